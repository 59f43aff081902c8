"""SQL preparation (SPEC 3.6) and parameter insertion (SPEC 6, "In SQL")."""

from __future__ import annotations

import pytest

from projects.parameters import Param
from tasks.sqlbind import bind
from tasks.sqltext import SqlError, assigned_variables, insert_parameters, prepare, show

NOCOUNT = "SET NOCOUNT ON;\n"

# --- preparation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect", "expected"),
    [
        ("SELECT 1", "mssql", [NOCOUNT + "SELECT 1"]),
        ("SELECT 1", "postgresql", ["SELECT 1"]),
        ("SELECT 1", "mysql", ["SELECT 1"]),
        ("SELECT 1", "sqlite", ["SELECT 1"]),
        ("SELECT 1", "", ["SELECT 1"]),  # a connection without a dialect: "other"
        ("SELECT * FROM #tmp\nGO", "mssql", [NOCOUNT + "SELECT * FROM #tmp"]),
        ("SELECT 1 # note\nGO", "mysql", ["SELECT 1 # note"]),
        ("", "mssql", []),  # nothing to run: no NOCOUNT either
        ("-- just a note\n/* and this */", "mssql", []),
        # USE is removed, with its semicolon and its line.
        ("USE Reports;\nSELECT 1", "mssql", [NOCOUNT + "SELECT 1"]),
        ("SELECT 1\nUSE db\nSELECT 2", "mssql", [NOCOUNT + "SELECT 1\nSELECT 2"]),
        ("SELECT 1; USE db; SELECT 2", "mssql", [NOCOUNT + "SELECT 1;  SELECT 2"]),
        ("USE db;\nSELECT 1", "mysql", ["SELECT 1"]),
        # GO splits batches; NOCOUNT only once, as SET options last the session.
        (
            "use [My Db]\nGO\nSELECT 1\nGO\nSELECT 2\n",
            "mssql",
            [NOCOUNT + "SELECT 1", "SELECT 2"],
        ),
        ("SELECT 1\n  go  \nSELECT 2", "mssql", [NOCOUNT + "SELECT 1", "SELECT 2"]),
        ("SELECT 1\nGO -- part two\nSELECT 2", "mssql", [NOCOUNT + "SELECT 1", "SELECT 2"]),
        ("SELECT 1\r\nGO\r\nSELECT 2\r\n", "mssql", [NOCOUNT + "SELECT 1", "SELECT 2"]),
        ("GO\nGO\n-- only\nGO\nSELECT 1", "mssql", [NOCOUNT + "SELECT 1"]),
        ("SELECT 1\nGO\n", "postgresql", ["SELECT 1"]),
        # GO and USE inside strings, comments and quoted names are left alone.
        ("SELECT 'a\nGO\nb'", "mssql", [NOCOUNT + "SELECT 'a\nGO\nb'"]),
        ("SELECT N'it''s\nGO\nUSE x'", "mssql", [NOCOUNT + "SELECT N'it''s\nGO\nUSE x'"]),
        ("-- USE other\nSELECT 1", "mssql", [NOCOUNT + "-- USE other\nSELECT 1"]),
        ("/* USE x\nGO\n*/ SELECT 1", "mssql", [NOCOUNT + "/* USE x\nGO\n*/ SELECT 1"]),
        ("/* a /* b */\nGO\n*/ SELECT 1", "mssql", [NOCOUNT + "/* a /* b */\nGO\n*/ SELECT 1"]),
        ("SELECT [USE]\nFROM t", "mssql", [NOCOUNT + "SELECT [USE]\nFROM t"]),
        ('SELECT "a\nGO\nb" FROM t', "postgresql", ['SELECT "a\nGO\nb" FROM t']),
        ("SELECT $$\nGO\n$$", "postgresql", ["SELECT $$\nGO\n$$"]),
        ("SELECT $q$ it's\nGO\n$q$", "postgresql", ["SELECT $q$ it's\nGO\n$q$"]),
        ("SELECT E'\\'\nGO\n'", "postgresql", ["SELECT E'\\'\nGO\n'"]),
        ("SELECT 'a\\'\nGO\n'", "mysql", ["SELECT 'a\\'\nGO\n'"]),  # \' escapes in MySQL
        ("SELECT `x\nGO\ny` FROM t", "mysql", ["SELECT `x\nGO\ny` FROM t"]),
        # Not a batch separator or a USE statement.
        ("SELECT go FROM t", "mssql", [NOCOUNT + "SELECT go FROM t"]),
        ("SELECT 1\nGOTO done", "mssql", [NOCOUNT + "SELECT 1\nGOTO done"]),
        ("SELECT x.use FROM t", "mssql", [NOCOUNT + "SELECT x.use FROM t"]),
        ("SELECT * FROM t\nUSE INDEX (ix)", "mysql", ["SELECT * FROM t\nUSE INDEX (ix)"]),
        ("SELECT * FROM t USE INDEX (ix)", "mysql", ["SELECT * FROM t USE INDEX (ix)"]),
    ],
)
def test_prepare(sql: str, dialect: str, expected: list[str]) -> None:
    assert prepare(sql, dialect) == expected


@pytest.mark.parametrize(
    ("sql", "dialect", "message"),
    [
        ("SELECT 1\nGO 5\n", "mssql", "line 2: 'GO 5'"),
        ("SELECT 'abc", "mssql", "unterminated string literal starting on line 1"),
        # In SQL Server a backslash does not escape: the string ends at a\'.
        ("SELECT 'a\\'\nGO\n'", "mssql", "unterminated string literal starting on line 3"),
        ("SELECT 1 /* open", "mssql", "unterminated /* comment starting on line 1"),
        ("SELECT [open\n", "mssql", "unterminated quoted name ([...]) starting on line 1"),
        ("SELECT $$ x", "postgresql", "unterminated $-quoted string starting on line 1"),
        ("SELECT 1", "oracle", "unknown SQL dialect 'oracle'"),
    ],
)
def test_prepare_errors(sql: str, dialect: str, message: str) -> None:
    with pytest.raises(SqlError) as error:
        prepare(sql, dialect)
    assert message in str(error.value)


# --- parameter insertion ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        # The two examples of SPEC section 6.
        (
            "DECLARE @d datetime = getdate()",
            {"@d": "getdate()-1"},
            "DECLARE @d datetime = getdate()-1",
        ),
        ("SET @d = 1", {"@d": "2"}, "SET @d = 2"),
        ("SET @d = 1;", {"@d": "2"}, "SET @d = 2;"),
        ("DECLARE @d AS int = 1", {"@d": "2"}, "DECLARE @d AS int = 2"),
        # Several declarations in one DECLARE.
        ("DECLARE @a int = 1, @b int = 2", {"@b": "3"}, "DECLARE @a int = 1, @b int = 3"),
        ("DECLARE @a int = 1, @b int = 2", {"@a": "9"}, "DECLARE @a int = 9, @b int = 2"),
        (
            "DECLARE @a int = 1 DECLARE @b int = 2",
            {"@a": "3", "@b": "4"},
            "DECLARE @a int = 3 DECLARE @b int = 4",
        ),
        # The default ends at the next statement, not at the end of the text.
        (
            "DECLARE @d datetime = getdate()\nSELECT * FROM t WHERE x > @d",
            {"@d": "'2026-01-01'"},
            "DECLARE @d datetime = '2026-01-01'\nSELECT * FROM t WHERE x > @d",
        ),
        (
            "DECLARE @d date = DATEADD(day, -1,\n    getdate());\nSELECT 1",
            {"@d": "x"},
            "DECLARE @d date = x;\nSELECT 1",
        ),
        (
            "DECLARE @s varchar(9) = 'a'\n  + 'b'\nSELECT @s",
            {"@s": "'x'"},
            "DECLARE @s varchar(9) = 'x'\nSELECT @s",
        ),
        (
            "DECLARE @d int = 1 -- one\nSELECT 1",
            {"@d": "7"},
            "DECLARE @d int = 7 -- one\nSELECT 1",
        ),
        (
            "SET @d = CASE WHEN 1=1 THEN 2 ELSE 3 END\nSELECT @d",
            {"@d": "9"},
            "SET @d = 9\nSELECT @d",
        ),
        ("IF 1=1 SET @d = 1 ELSE SET @d = 2", {"@d": "5"}, "IF 1=1 SET @d = 5 ELSE SET @d = 5"),
        (
            "SET @n = (SELECT COUNT(*) FROM t WHERE a = 'x')\nSELECT @n",
            {"@n": "0"},
            "SET @n = 0\nSELECT @n",
        ),
        ("DECLARE @d int = [dbo].[f](1);", {"@d": "2"}, "DECLARE @d int = 2;"),
        (
            "DECLARE @s varchar(20) = 'a;b', @n int = 1",
            {"@s": "'x'"},
            "DECLARE @s varchar(20) = 'x', @n int = 1",
        ),
        (
            "DECLARE @s nvarchar(9) = N'x' + N'y''z'",
            {"@s": "N'q'"},
            "DECLARE @s nvarchar(9) = N'q'",
        ),
        ("DECLARE @d int = 1;\nSET @d = 2;", {"@d": "3"}, "DECLARE @d int = 3;\nSET @d = 3;"),
        # Values are literal: $, backslashes, \1 and quotes are not special.
        ("SET @d = 1", {"@d": "$1"}, "SET @d = $1"),
        ("SET @p = ''", {"@p": "'C:\\temp\\new'"}, "SET @p = 'C:\\temp\\new'"),
        ("SET @p = ''", {"@p": "'\\1\\g<0>'"}, "SET @p = '\\1\\g<0>'"),
        ("SET @s = ''", {"@s": "'O''Brien'"}, "SET @s = 'O''Brien'"),
        ("SET @s = ''", {"@s": '"quoted"'}, 'SET @s = "quoted"'),
        # Keys match whole names, in any case.
        ("declare @D date = getdate()", {"@d": "1"}, "declare @D date = 1"),
        ("DECLARE @Day int = 1", {"@DAY": "2"}, "DECLARE @Day int = 2"),
        ("DECLARE @day int = 1", {"@d": "5"}, "DECLARE @day int = 1"),
        ("DECLARE @d int = 1, @day int = 2", {"@d": "5"}, "DECLARE @d int = 5, @day int = 2"),
        ("DECLARE @d int = 1", {"d": "5"}, "DECLARE @d int = 1"),  # not a SQL variable
        # Strings and comments are not touched.
        ("SELECT 'DECLARE @d int = 1'", {"@d": "5"}, "SELECT 'DECLARE @d int = 1'"),
        ("-- DECLARE @d int = 1\nSELECT 1", {"@d": "5"}, "-- DECLARE @d int = 1\nSELECT 1"),
        ("/* SET @d = 1 */ SELECT 1", {"@d": "5"}, "/* SET @d = 1 */ SELECT 1"),
        ("SELECT [SET @d = 1]", {"@d": "5"}, "SELECT [SET @d = 1]"),
        # No default, no assignment: nothing to replace.
        ("DECLARE @d date;\nSELECT 1", {"@d": "5"}, "DECLARE @d date;\nSELECT 1"),
        (
            "DECLARE @t TABLE (a int, b int)\nDECLARE @d int = 1",
            {"@t": "x", "@d": "2"},
            "DECLARE @t TABLE (a int, b int)\nDECLARE @d int = 2",
        ),
        (
            "DECLARE c CURSOR FOR SELECT a FROM t\nSET @d = 1",
            {"@d": "2"},
            "DECLARE c CURSOR FOR SELECT a FROM t\nSET @d = 2",
        ),
        ("SET @d += 1", {"@d": "5"}, "SET @d += 1"),
        ("SET NOCOUNT ON; SET @d = 1", {"@d": "5"}, "SET NOCOUNT ON; SET @d = 5"),
        # UPDATE ... SET @v = column is an assignment in a query, not a default.
        ("UPDATE t SET @d = c", {"@d": "5"}, "UPDATE t SET @d = c"),
        ("UPDATE t SET a = 1;\nSET @d = 1", {"@d": "5"}, "UPDATE t SET a = 1;\nSET @d = 5"),
        ("", {"@d": "5"}, ""),
        ("SELECT 1", {}, "SELECT 1"),
    ],
)
def test_insert_parameters(sql: str, params: dict[str, str], expected: str) -> None:
    assert insert_parameters(sql, [Param(k, v) for k, v in params.items()]) == expected


def test_insert_parameters_mysql_set_list() -> None:
    sql = "SET @a = 1, @b := 2;\nSELECT @a, @b"
    result = insert_parameters(sql, [Param("@b", "5")], dialect="mysql")
    assert result == "SET @a = 1, @b := 5;\nSELECT @a, @b"


def test_insert_parameters_mysql_string_with_backslash() -> None:
    sql = "SELECT 'x\\' SET @d = 1';\nSET @d = 1;"
    result = insert_parameters(sql, [Param("@d", "2")], dialect="mysql")
    assert result == "SELECT 'x\\' SET @d = 1';\nSET @d = 2;"


def test_assigned_variables() -> None:
    sql = "DECLARE @a int = 1, @b int, @c int = 3\nSET @d = 4\nSELECT '@e = 5'"
    assert assigned_variables(sql) == ["@a", "@c", "@d"]


# --- preview: preparation, then insertion ---------------------------------------------


def preview(sql: str, dialect: str, params: list[Param]) -> str:
    return show([batch.sql for batch in bind(sql, dialect, params)])


def test_preview() -> None:
    sql = "USE db\nGO\nDECLARE @d date = getdate()\nSELECT @d\nGO\nSELECT 2"
    result = preview(sql, "mssql", [Param("@d", "getdate()-1")])
    assert result == NOCOUNT + "DECLARE @d date = getdate()-1\nSELECT @d\nGO\nSELECT 2"


def test_preview_never_reads_a_value_as_sql_structure() -> None:
    # Parameters go in after USE/GO handling, so this value stays as written.
    sql = "DECLARE @s varchar(9) = ''\nSELECT @s"
    result = preview(sql, "mssql", [Param("@s", "'x'\nGO\nUSE db")])
    assert result == NOCOUNT + "DECLARE @s varchar(9) = 'x'\nGO\nUSE db\nSELECT @s"


def test_preview_postgresql_has_no_nocount() -> None:
    assert preview("SELECT 1\nGO\nSELECT 2", "postgresql", []) == "SELECT 1\nGO\nSELECT 2"
