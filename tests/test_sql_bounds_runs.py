"""SQL within bounds on real ODBC drivers and servers (SPEC 8.2, issue 13 point 3).

SQLite connections refuse the statements that reach other files (Courier's own
database among them); a read-only connection stays read only on PostgreSQL,
MariaDB and SQLite whatever its SQL tries. Every check reads the table
afterwards over a connection of the test's own.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pyodbc
import pytest
from django.contrib.sessions.models import Session
from django.db import connection as django_db
from django.utils import timezone

from connections.clients import ClientError, odbc
from runs.models import RunStatus
from tests.database_support import csv_of, database, rows_of, run_query, seed

pytestmark = pytest.mark.django_db

ROWS = [(1, "Ann"), (2, "Bob")]
CANARY = "canary-session-key-7f3a9c"


def everything_said(run) -> str:
    return run.error + "\n".join(run.log_lines.values_list("message", flat=True))


def own_database_file() -> str:
    if django_db.vendor != "sqlite":
        pytest.skip("Courier's own database is not a SQLite file in this configuration")
    return django_db.settings_dict["NAME"]


# --- SQLite: nothing that reaches another file ---------------------------------------------


@pytest.mark.django_db(transaction=True)  # the session row must be in the file for another connection to read
@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
def test_attaching_courier_s_own_database_is_refused_and_nothing_of_it_is_exported(sqlite_odbc, read_only):
    path = own_database_file()
    Session.objects.create(session_key=CANARY, session_data="x", expire_date=timezone.now() + timedelta(days=1))
    sql = f"ATTACH DATABASE '{path}' AS c\nGO\nSELECT session_key FROM c.django_session"
    run = run_query(database(sqlite_odbc, read_only=read_only), sql)
    assert run.status == RunStatus.FAILED and run.permanent
    assert run.error.startswith(
        "The query may not run on Acme/sqlite-db: SQLite connections may not run ATTACH statements (statement 1: ATTACH DATABASE '"
    ), run.error
    assert not run.files.exists()
    assert CANARY not in everything_said(run)


@pytest.mark.parametrize(
    ("statement", "doing", "excerpt"),
    [
        ("ATTACH DATABASE ':memory:' AS c", "run ATTACH statements", "ATTACH DATABASE ':memory:' AS c"),
        ("DETACH DATABASE main", "run DETACH statements", "DETACH DATABASE main"),
        ("VACUUM INTO '{tmp}/copy.sqlite3'", "run VACUUM statements", "VACUUM INTO '{tmp}"),
        ("PRAGMA query_only = 0", "run PRAGMA statements", "PRAGMA query_only = 0"),
        ("SELECT load_extension('{tmp}/nothing')", "call load_extension()", "SELECT load_extension('{tmp}"),
        ("SELECT fts3_tokenizer('simple')", "call fts3_tokenizer()", "SELECT fts3_tokenizer('simple')"),
    ],
)
def test_each_refused_statement_fails_the_run_before_any_batch_runs(sqlite_odbc, tmp_path, statement, doing, excerpt):
    tmp = tmp_path / "t"
    tmp.mkdir()
    statement, excerpt = statement.format(tmp=tmp), excerpt.format(tmp=tmp)
    run = run_query(database(sqlite_odbc), f"CREATE TABLE ran_first (n int)\nGO\n{statement}\nGO\nSELECT 1 AS one")
    assert run.status == RunStatus.FAILED and run.permanent
    assert run.error.startswith(f"The query may not run on Acme/sqlite-db: SQLite connections may not {doing} (statement 2: {excerpt[:30]}")
    with sqlite3.connect(sqlite_odbc.name) as own:  # the first batch did not run either
        assert own.execute("SELECT name FROM sqlite_master WHERE name = 'ran_first'").fetchall() == []
    assert list(tmp.iterdir()) == []


def test_the_same_words_in_strings_comments_and_quoted_names_run(sqlite_odbc):
    # (No ";" in the comments: the SQLite3 ODBC driver counts those as statements and refuses the query.)
    sql = (
        "-- ATTACH DATABASE 'x' AS c, PRAGMA query_only = 0\n"
        "SELECT /* DETACH c, VACUUM */ 'ATTACH DATABASE x AS c' AS \"pragma\", 'load_extension(1)' AS [vacuum]"
    )
    run = run_query(database(sqlite_odbc, read_only=True), sql)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "pragma,vacuum\nATTACH DATABASE x AS c,load_extension(1)\n"


def test_a_sqlite_database_saved_with_another_dialect_is_refused(sqlite_odbc):
    """The bounds follow the dialect: a SQLite database saved as "other" would escape them, so it does not run."""
    seed(sqlite_odbc, "guarded", ROWS)
    run = run_query(database(sqlite_odbc, dialect="other"), f"ATTACH DATABASE '{sqlite_odbc.name}' AS c\nGO\nSELECT * FROM c.guarded")
    assert run.status == RunStatus.FAILED and run.permanent
    assert "Acme/sqlite-db reaches a SQLite database, but its SQL dialect is not set to SQLite" in run.error, run.error
    assert not run.files.exists()


# --- Read only on every dialect -------------------------------------------------------------

WRITES = {
    "UPDATE": "UPDATE guarded SET name = 'changed'",
    "INSERT": "INSERT INTO guarded VALUES (3, 'Eve')",
    "CREATE": "CREATE TABLE planted (n INTEGER)",
    "DELETE": "DELETE FROM guarded",
}
DATABASES = ["pg_odbc", "mariadb_odbc", "sqlite_odbc"]


def tables(db) -> set[str]:
    cnxn = pyodbc.connect(db.odbc)
    try:
        return {row.table_name.lower() for row in cnxn.cursor().tables(tableType="TABLE").fetchall()}
    finally:
        cnxn.close()


@pytest.mark.parametrize("fixture", DATABASES)
@pytest.mark.parametrize("write", list(WRITES))
def test_a_read_only_connection_refuses_writes_and_the_data_is_unchanged(fixture, write, request):
    db = request.getfixturevalue(fixture)
    seed(db, "guarded", ROWS)
    run = run_query(database(db, read_only=True), f"{WRITES[write]}\nGO\nSELECT count(*) AS n FROM guarded")
    assert run.status == RunStatus.FAILED and run.permanent
    assert "tried to change data, but the connection is read only" in run.error, run.error
    assert rows_of(db, "guarded") == ROWS
    assert "planted" not in tables(db)


# SQL that tries to switch a read-only session back, on each server. Each is stopped either by
# the check before anything runs (the message names the statement) or by the server itself.
SWITCH_BACK = [
    ("pg_odbc", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE\nGO\n{update}", "read only"),
    ("pg_odbc", "SELECT set_config('default_transaction_read_only', 'off', false)\nGO\n{update}", "read only"),
    ("pg_odbc", "SET transaction_read_only = off;\n{update}", "read only"),
    ("pg_odbc", "SELECT set_config('default_transaction_read_only', 'off', false);\nCOMMIT;\n{update}",
     "Read-only PostgreSQL connections may not run COMMIT statements (statement 2: COMMIT)"),
    # With backslashes read as escapes the server sees COMMIT as code; without, this check would see a string.
    ("pg_odbc", "SELECT set_config('default_transaction_read_only', 'off', false);\nSET standard_conforming_strings = off\n"
                "GO\nSELECT 'a\\''; COMMIT; {update}; SELECT '\\''",
     "may not use a string with a backslash before a quote"),
    ("mariadb_odbc", "SET SESSION TRANSACTION READ WRITE;\n{update}", "may not switch to READ WRITE (statement 1: "),
    ("mariadb_odbc", "SET @@session.tx_read_only = 0;\n{update}", "may not set tx_read_only"),
    ("mariadb_odbc", "/*M! SET SESSION TRANSACTION READ WRITE */;\n{update}", "may not switch to READ WRITE"),
    ("mariadb_odbc", "SET sql_mode = 'NO_BACKSLASH_ESCAPES'\nGO\nSELECT 'a\\'; SET SESSION TRANSACTION READ WRITE; {update}; SELECT '",
     "may not use a string with a backslash before a quote"),
    ("sqlite_odbc", "PRAGMA query_only = 0\nGO\n{update}", "SQLite connections may not run PRAGMA statements"),
]


@pytest.mark.parametrize(("fixture", "sql", "message"), SWITCH_BACK, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(SWITCH_BACK)])
def test_sql_cannot_switch_a_read_only_connection_back(fixture, sql, message, request):
    db = request.getfixturevalue(fixture)
    seed(db, "guarded", ROWS)
    run = run_query(database(db, read_only=True), sql.format(update=WRITES["UPDATE"]) + "\nGO\nSELECT 1 AS one")
    assert rows_of(db, "guarded") == ROWS
    assert run.status == RunStatus.FAILED and run.permanent
    assert message in run.error, run.error


def test_postgresql_holds_read_only_without_any_check_of_the_sql(pg_odbc):
    """The server is the bound: batches sent straight to the client, past the SQL check, still cannot write."""
    seed(pg_odbc, "guarded", ROWS)
    conn = database(pg_odbc, read_only=True)
    attempts = [
        ["SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", WRITES["UPDATE"]],
        ["SELECT set_config('default_transaction_read_only', 'off', false)", WRITES["UPDATE"]],
        ["SET transaction_read_only = off", WRITES["UPDATE"]],
        ["RESET ALL", WRITES["UPDATE"]],
    ]
    for batches in attempts:
        with pytest.raises(ClientError) as error:
            odbc.DatabaseClient(conn).run_query(batches, lambda columns, rows: list(rows))
        assert "read only" in str(error.value) and error.value.permanent, batches
    assert rows_of(pg_odbc, "guarded") == ROWS


@pytest.mark.parametrize("fixture", DATABASES)
def test_a_read_only_connection_still_reads_in_batches(fixture, request):
    db = request.getfixturevalue(fixture)
    seed(db, "guarded", ROWS)
    run = run_query(database(db, read_only=True), "SELECT 1 AS warm_up\nGO\nSELECT id, name FROM guarded ORDER BY id")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "warm_up\n1\n"  # the first result set with columns is the export


@pytest.mark.parametrize("fixture", DATABASES)
def test_a_writable_connection_still_writes(fixture, request):
    db = request.getfixturevalue(fixture)
    seed(db, "guarded", ROWS)
    run = run_query(database(db), "UPDATE guarded SET name = 'changed' WHERE id = 1\nGO\nSELECT name FROM guarded WHERE id = 1")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "name\nchanged\n"
    assert rows_of(db, "guarded") == [(1, "changed"), (2, "Bob")]
