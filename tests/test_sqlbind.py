"""The placeholder scan and binding of tasks/sqlbind.py (SPEC 6, issue 17), on the text alone.

What the drivers make of it is in tests/test_bound_parameters_runs.py; SQL
Server has no server here, so its prepared text is pinned below.
"""

from __future__ import annotations

import pytest

from projects.parameters import Param
from tasks.sqlbind import Batch, PlaceholderError, bind, bindings, bound_summary, problem, unused
from tasks.sqltext import NOCOUNT, SqlError

START = Param("@start", "2024-03-01")


def batches(sql: str, dialect: str, *params: Param) -> list[tuple[str, tuple[str, ...]]]:
    return [(b.sql, b.values) for b in bind(sql, dialect, [START, *params])]


# --- what is a placeholder ------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite", "mssql", "other"])
def test_every_dialect_binds_a_placeholder_in_a_where(dialect):
    prepared = bind("SELECT * FROM t WHERE day >= cast(:start as date)", dialect, [START])
    prefix = NOCOUNT if dialect == "mssql" else ""
    assert prepared == [Batch(prefix + "SELECT * FROM t WHERE day >= cast(? as date)", ("start",), ("2024-03-01",))]


@pytest.mark.parametrize(
    ("sql", "dialect", "expected"),
    [
        # Several uses: one marker each, in order.
        ("SELECT :start, :START WHERE a = :Start", "postgresql", "SELECT ?, ? WHERE a = ?"),
        # Casts and assignments.
        ("SELECT x::date, :start::date, @a := :start", "postgresql", "SELECT x::date, ?::date, @a := ?"),
        ("SELECT hierarchyid::GetRoot(), :start", "mssql", NOCOUNT + "SELECT hierarchyid::GetRoot(), ?"),
        # A colon after a name or number is no placeholder (slices); one after "(" is.
        ("SELECT arr[lo:start], arr[1:start], arr[lo:(:start)]", "postgresql", "SELECT arr[lo:start], arr[1:start], arr[lo:(?)]"),
        # Strings, comments and quoted names of each dialect.
        ("SELECT ':start', E'\\':start', $$:start$$, $q$ :start $q$, \"a:start\" -- :start", "postgresql",
         "SELECT ':start', E'\\':start', $$:start$$, $q$ :start $q$, \"a:start\" -- :start"),
        ("SELECT 'it\\':start', \":start\", `:start` # :start\n/* :start */ /*! :start */", "mysql",
         "SELECT 'it\\':start', \":start\", `:start` # :start\n/* :start */ /*! :start */"),
        ("SELECT ':start', [:start], `:start`, \":start\" -- :start", "sqlite", "SELECT ':start', [:start], `:start`, \":start\" -- :start"),
        ("SELECT N':start', [:start] /* a /* :start */ b */ -- :start", "mssql", NOCOUNT + "SELECT N':start', [:start] /* a /* :start */ b */ -- :start"),
        # Not names: digits first, a space after the colon.
        ("SELECT :1, : start, '10:30'", "postgresql", "SELECT :1, : start, '10:30'"),
    ],
)
def test_what_is_and_is_not_a_placeholder(sql, dialect, expected):
    assert [b.sql for b in bind(sql, dialect, [START])] == [expected]


def test_sql_server_keeps_its_variables_and_declarations_next_to_placeholders():
    sql = (
        "USE Reports\nGO\n"
        "DECLARE @day date = getdate(), @country nvarchar(2) = :country -- not :start\n"
        "SELECT * FROM dbo.visits WHERE day >= @day AND country = @country AND note <> N':start'\n"
        "GO\nSELECT TOP (cast(:top as int)) * FROM dbo.visits WHERE day >= :start\n"
    )
    prepared = bind(sql, "mssql", [Param("@day", "'20240301'"), Param("country", "NL"), Param("top", "5"), START])
    assert prepared == [
        Batch(NOCOUNT + "DECLARE @day date = '20240301', @country nvarchar(2) = ? -- not :start\n"
              "SELECT * FROM dbo.visits WHERE day >= @day AND country = @country AND note <> N':start'",
              ("country",), ("NL",)),
        Batch("SELECT TOP (cast(? as int)) * FROM dbo.visits WHERE day >= ?", ("top", "start"), ("5", "2024-03-01")),
    ]


def test_a_placeholder_inside_a_default_that_a_parameter_replaces_is_gone_with_it():
    prepared = bind("DECLARE @d date = :start\nSELECT @d, :start", "mssql", [START, Param("@d", "getdate()")])
    assert prepared == [Batch(NOCOUNT + "DECLARE @d date = getdate()\nSELECT @d, ?", ("start",), ("2024-03-01",))]


def test_a_value_is_bound_never_pasted():
    evil = "x'; drop table t; -- \\ $1 :start ?"
    assert batches("SELECT :v", "postgresql", Param("v", evil)) == [("SELECT ?", (evil,))]


def test_each_go_batch_binds_its_own_markers():
    sql = "SELECT :start\nGO\nSELECT 1\nGO\nSELECT :c, :start"
    assert batches(sql, "postgresql", Param("c", "NL")) == [
        ("SELECT ?", ("2024-03-01",)), ("SELECT 1", ()), ("SELECT ?, ?", ("NL", "2024-03-01")),
    ]


# --- MySQL/MariaDB: one statement at a time when a batch binds ---------------------------


def test_a_mysql_batch_with_placeholders_runs_statement_by_statement():
    sql = (
        "SET @a := 1; SELECT :start, 'x;y' AS s; -- done; really\n"
        "BEGIN NOT ATOMIC SELECT :start; IF 1 THEN SELECT CASE WHEN 1 THEN 2 END; END IF; END;\n"
        "CASE @a WHEN 1 THEN SELECT 1; END CASE; BEGIN; SELECT :start"
    )
    assert batches(sql, "mysql") == [
        ("SET @a := 1;", ()),
        ("SELECT ?, 'x;y' AS s;", ("2024-03-01",)),
        ("-- done; really\nBEGIN NOT ATOMIC SELECT ?; IF 1 THEN SELECT CASE WHEN 1 THEN 2 END; END IF; END;", ("2024-03-01",)),
        ("CASE @a WHEN 1 THEN SELECT 1; END CASE;", ()),
        ("BEGIN;", ()),
        ("SELECT ?", ("2024-03-01",)),
    ]


def test_a_mysql_batch_without_placeholders_is_sent_whole():
    assert batches("SET @a := 1; SELECT @a", "mysql") == [("SET @a := 1; SELECT @a", ())]


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect", "keys", "message"),
    [
        ("SELECT 1\nWHERE c = :country", "postgresql", ["@start"],
         "No parameter for the placeholder :country (line 2): add a parameter with the key country (a leading @, # or $ is allowed)."),
        ("SELECT :b, :a, :b, :start", "sqlite", ["start"],
         "No parameter for the placeholders :b (line 1), :a (line 1): add parameters with these keys (a leading @, # or $ is allowed)."),
        ("SELECT :start", "mysql", ["@start", "START"], "The placeholder :start (line 1) matches the parameters @start and START: keep one of them."),
        ("SELECT :start\nGO\nSELECT data ? 'k' FROM t", "postgresql", ["start"],
         "line 3: the query binds :name placeholders, so the driver would also take the ? for a parameter marker; write it another way."),
        ("SELECT :start -- why?", "sqlite", ["start"],
         "line 1: the query binds :name placeholders, so the driver would also take the ? in this comment or quoted name for a parameter marker; write it another way."),
    ],
)
def test_placeholders_that_cannot_be_bound_are_refused_naming_them(sql, dialect, keys, message):
    assert problem(sql, dialect, keys) == message
    with pytest.raises(PlaceholderError) as error:
        bind(sql, dialect, [Param(k, "v") for k in keys])
    assert str(error.value) == message


def test_what_is_fine_without_placeholders_is_not_refused():
    assert problem("SELECT data ? 'k' -- why?", "postgresql", []) is None
    assert problem("SELECT ':x' -- :y", "sqlite", []) is None
    assert problem("SELECT 'open", "postgresql", []) is None  # unreadable SQL: the preview says why
    with pytest.raises(SqlError, match="unterminated string literal"):
        bind("SELECT 'open", "postgresql", [])


# --- what the preview says --------------------------------------------------------------


def test_unused_parameters_match_neither_a_placeholder_nor_a_declaration():
    sql = "DECLARE @d date = getdate(); DECLARE @e date;\nSELECT * FROM t WHERE c = '{country}' AND x = :start"
    keys = ["@d", "@e", "{country}", "START", "#start", "client"]
    assert unused(sql, "mssql", keys) == ["@e", "{country}", "client"]
    assert unused("SELECT 'open", "postgresql", ["x"]) == []


def test_bindings_show_each_marker_with_its_value_and_mask_sensitive_ones():
    params = [START, Param("token", "s3cr3t", sensitive=True)]
    found = bindings(bind("SELECT :start, :token\nGO\nSELECT :token, :start", "postgresql", params), params)
    assert [(b.batch, b.marker, b.name, b.shown) for b in found] == [
        (1, 1, "start", '"2024-03-01"'), (1, 2, "token", "********"), (2, 1, "token", "********"), (2, 2, "start", '"2024-03-01"'),
    ]
    assert bound_summary(found) == ':start = "2024-03-01", :token = ********'
