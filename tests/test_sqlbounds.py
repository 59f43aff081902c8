"""What SQL a connection may run (SPEC 8.2), read from tokens: the rules, their messages, and what is left alone.

The same rules on real drivers and servers: tests/test_sql_bounds_runs.py.
"""

from __future__ import annotations

import pytest

from tasks.sqlbounds import SqlRefused, check, refusal_in
from tasks.sqltext import prepare


def refused(sql: str, dialect: str, read_only: bool = False) -> str:
    with pytest.raises(SqlRefused) as error:
        check(prepare(sql, dialect), dialect, read_only=read_only)
    return str(error.value)


def allowed(sql: str, dialect: str, read_only: bool = False) -> None:
    check(prepare(sql, dialect), dialect, read_only=read_only)


# --- SQLite: nothing that reaches another file or loads code ---------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT 1;\nATTACH DATABASE '/srv/courier/var/courier.sqlite3' AS c;\nSELECT session_key FROM c.django_session",
            "SQLite connections may not run ATTACH statements (statement 2: ATTACH DATABASE '/srv/courier/var/courier.sqlite3' AS c).",
        ),
        ("attach 'x.db' as x", "may not run ATTACH statements (statement 1: attach 'x.db' as x)."),
        ("SELECT 1\nGO\nDETACH DATABASE c", "may not run DETACH statements (statement 2: DETACH DATABASE c)."),
        ("VACUUM INTO '/tmp/copy.db'", "may not run VACUUM statements (statement 1: VACUUM INTO '/tmp/copy.db')."),
        ("VACUUM", "may not run VACUUM statements (statement 1: VACUUM)."),  # all of VACUUM, not only INTO
        ("PRAGMA query_only = 0", "may not run PRAGMA statements (statement 1: PRAGMA query_only = 0)."),
        ("pragma table_info(orders)", "may not run PRAGMA statements"),  # even one that only reads
        ("EXPLAIN QUERY PLAN ATTACH 'x' AS y", "may not run ATTACH statements"),
        ("/* note */ -- more\n  ATTACH 'x' AS y", "may not run ATTACH statements (statement 1: ATTACH 'x' AS y)."),
        ("SELECT load_extension('/tmp/evil')", "may not call load_extension() (statement 1: SELECT load_extension('/tmp/evil'))."),
        ("SELECT id FROM t WHERE LOAD_EXTENSION ('x') IS NULL", "may not call load_extension()"),
        ('SELECT "load_extension"(\'x\')', "may not call load_extension()"),  # a quoted name called is the function
        ("SELECT [load_extension]('x')", "may not call load_extension()"),
        ("SELECT `load_extension`('x')", "may not call load_extension()"),
        ("SELECT fts3_tokenizer('mine', fts3_tokenizer('simple'))", "may not call fts3_tokenizer()"),
    ],
)
def test_sqlite_refuses_statements_that_reach_other_files(sql: str, message: str) -> None:
    assert message in refused(sql, "sqlite")
    assert message in refused(sql, "sqlite", read_only=True)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'ATTACH DATABASE x AS c; PRAGMA query_only=0; VACUUM' AS note",
        "SELECT 1 -- ATTACH 'x' AS c\n/* PRAGMA query_only = 0; VACUUM INTO 'y' */",
        'SELECT "attach", [pragma], `vacuum`, "load_extension" FROM t',
        "SELECT 'load_extension(1)', x'00' FROM t",
        "SELECT * FROM pragma_table_info('orders')",  # the table-valued functions only read
        "SELECT detached, vacuumed FROM t",
    ],
)
def test_the_same_words_in_strings_comments_and_names_are_fine(sql: str) -> None:
    allowed(sql, "sqlite")
    allowed(sql, "sqlite", read_only=True)


def test_only_sqlite_has_these_bounds() -> None:
    allowed("PRAGMA foo; ATTACH 'x' AS y", "postgresql")
    allowed("SELECT load_extension('x')", "other")


def test_a_long_statement_is_cut_short_in_the_message() -> None:
    message = refused("ATTACH DATABASE '" + "/very/long" * 50 + ".db' AS c", "sqlite")
    excerpt = message.split("statement 1: ")[1]
    assert excerpt.endswith(" ...).") and len(excerpt) <= 70


# --- PostgreSQL read only: nothing that ends Courier's read-only transaction -------------


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("SELECT 1; COMMIT; UPDATE t SET n = 1", "COMMIT"),
        ("SELECT 1\nGO\ncommit and chain", "COMMIT"),
        ("END; SELECT 1", "END"),
        ("ABORT", "ABORT"),
        ("ROLLBACK", "ROLLBACK"),
        ("ROLLBACK WORK", "ROLLBACK"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
    ],
)
def test_read_only_postgresql_refuses_ending_the_transaction(sql: str, word: str) -> None:
    message = refused(sql, "postgresql", read_only=True)
    assert f"Read-only PostgreSQL connections may not run {word} statements" in message
    assert "Courier keeps the whole query in one read-only transaction." in message
    allowed(sql, "postgresql")  # a writable connection may


@pytest.mark.parametrize(
    "sql",
    [
        "SAVEPOINT a; SELECT 1; ROLLBACK TO SAVEPOINT a; ROLLBACK WORK TO a; SELECT 2",
        "SELECT CASE WHEN x THEN 1\nEND AS y FROM t",
        "SELECT 'COMMIT; END' AS a, $$ ROLLBACK $$ AS b -- COMMIT",
        r"SELECT E'it\'s', 'a\\', 'C:\dir' AS path",  # escapes that end where they seem to, either way
    ],
)
def test_read_only_postgresql_allows(sql: str) -> None:
    allowed(sql, "postgresql", read_only=True)


def test_a_string_that_reads_differently_without_standard_conforming_strings_is_refused() -> None:
    # With standard_conforming_strings off (a batch may turn it off for the next), the server
    # ends the first string at the second quote and runs COMMIT; this check would see one string.
    sql = r"SELECT 'a\''; COMMIT; SELECT '\''"
    message = refused(sql, "postgresql", read_only=True)
    assert "may not use a string with a backslash before a quote (statement 1: " in message
    assert "standard_conforming_strings off; write E'...' for backslash escapes." in message


# --- MySQL/MariaDB read only: nothing that sets the access mode back --------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SET SESSION TRANSACTION READ WRITE; UPDATE t SET n = 2", "may not switch to READ WRITE (statement 1: SET SESSION TRANSACTION READ WRITE)."),
        ("START TRANSACTION READ /* x */ WRITE", "may not switch to READ WRITE"),
        ("SET @@session.tx_read_only = 0", "may not set tx_read_only (statement 1: SET @@session.tx_read_only = 0)."),
        ("SET @@tx_read_only = 0", "may not set tx_read_only"),
        ("SET @@session.`tx_read_only` = 0", "may not set tx_read_only"),  # quoted, it is still the variable
        ('SET @@session."tx_read_only" = 0', "may not set tx_read_only"),  # a name under ANSI_QUOTES
        ("SET SESSION transaction_read_only = OFF", "may not set transaction_read_only"),
        ("SET STATEMENT tx_read_only = 0 FOR UPDATE t SET n = 2", "may not set tx_read_only"),
        ("PREPARE s FROM @q", "may not run PREPARE statements"),
        ("EXECUTE IMMEDIATE CONCAT('SET SESSION TRANSACTION READ ', 'WRITE')", "may not run EXECUTE statements"),
        # The server runs the text of executable comments.
        ("/*M! SET SESSION TRANSACTION READ WRITE */ SELECT 1", "may not switch to READ WRITE"),
        ("/*!50110 SET tx_read_only = 0 */; SELECT 1", "may not set tx_read_only"),
        ("SELECT 'it\\'s'", "may not use a string with a backslash before a quote"),
        ('SELECT "a\\"b"', "may not use a string with a backslash before a quote"),
    ],
)
def test_read_only_mariadb_refuses_switching_back(sql: str, message: str) -> None:
    text = refused(sql, "mysql", read_only=True)
    assert text.startswith("Read-only MySQL/MariaDB connections ") and message in text
    allowed(sql, "mysql")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'READ WRITE', 'tx_read_only', `read` AS `write` FROM t -- SET SESSION TRANSACTION READ WRITE",
        "SELECT 1 /* tx_read_only */ # READ WRITE",
        "SELECT 'it''s', 'a\\\\', 'x\\ny' FROM t",
        "SELECT * FROM t LOCK IN SHARE MODE",
    ],
)
def test_read_only_mariadb_allows(sql: str) -> None:
    allowed(sql, "mysql", read_only=True)


# --- SQL Server and other: a guard against mistakes ----------------------------------------


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("UPDATE dbo.orders SET n = 1", "run UPDATE statements"),
        ("INSERT INTO dbo.orders VALUES (1)", "run INSERT statements"),
        ("SELECT 1\nDELETE FROM dbo.orders", "run DELETE statements"),
        ("TRUNCATE TABLE dbo.orders", "run TRUNCATE statements"),
        ("CREATE TABLE dbo.x (n int)", "run CREATE statements"),
        ("SELECT * INTO dbo.copy FROM dbo.orders", "run SELECT ... INTO"),
        ("MERGE INTO dbo.t USING s ON 1 = 1 WHEN MATCHED THEN DELETE;", "run MERGE statements"),
        ("EXEC('DELETE FROM dbo.orders')", "run dynamic SQL"),
        ("EXEC sp_executesql N'DELETE FROM dbo.orders'", "run dynamic SQL"),
    ],
)
def test_read_only_sql_server_refuses_statements_that_change_data(sql: str, what: str) -> None:
    message = refused(sql, "mssql", read_only=True)
    assert f"Read-only SQL Server connections may not {what}" in message
    assert "give the login read rights only" in message
    assert refused(sql, "other", read_only=True)


def test_read_only_sql_server_allows_temporary_tables_and_reading() -> None:
    sql = (
        "SELECT * INTO #t FROM dbo.orders\n"
        "INSERT INTO #t VALUES (1)\nUPDATE #t SET n = 2\nDELETE FROM #t\n"
        "DECLARE @v TABLE (n int)\nINSERT @v SELECT n FROM #t\n"
        "SELECT * FROM a INNER MERGE JOIN b ON a.id = b.id OPTION (MERGE JOIN)\n"
        "EXEC dbo.monthly_report @month = 3\n"
        "SELECT 'DROP TABLE x' AS note -- DELETE\n"
        "DROP TABLE IF EXISTS #t"
    )
    allowed(sql, "mssql", read_only=True)


def test_statements_are_numbered_as_written_not_counting_courier_nocount() -> None:
    assert "(statement 2: UPDATE t SET n = 1)" in refused("SELECT 1;\nUPDATE t SET n = 1", "mssql", read_only=True)


def test_refusal_in_names_the_connection_and_ignores_sql_that_cannot_be_prepared() -> None:
    class Conn:
        dialect, read_only = "sqlite", False

        def __str__(self) -> str:
            return "Demo/warehouse"

    assert refusal_in(Conn(), "ATTACH 'x' AS y") == (
        "The query may not run on Demo/warehouse: SQLite connections may not run ATTACH statements (statement 1: ATTACH 'x' AS y)."
    )
    assert refusal_in(Conn(), "SELECT 'unterminated") is None  # the preview explains that one
    assert refusal_in(Conn(), "SELECT 1") is None
