"""Databases over ODBC: connect with timeouts, stream a query's rows in batches."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import pyodbc

from connections.clients import deadline
from connections.clients.base import Client, ClientError, RowSink

# SQLSTATE classes where trying again cannot help: syntax and access rules,
# data errors, a missing driver or data source, refused credentials.
PERMANENT_STATES = ("42", "22", "23", "28", "IM", "3D", "3F", "0A")
# "Can't open lib" (driver not installed) comes as 01000.
PERMANENT_MESSAGES = (
    "can't open lib", "data source name not found", "password authentication failed", "access denied",
    # sqliteodbc reports every error as HY000: recognise the permanent ones by their text.
    "syntax error", "incomplete input", "no such table", "no such column",
)

# MariaDB Connector/ODBC's OPTION flags: several statements per batch, no local
# copy of the result, forward-only cursors.
MARIADB_MULTI_STATEMENTS = 1 << 26
MARIADB_NO_CACHE = 1 << 20
MARIADB_FORWARD_CURSOR = 1 << 21
MARIADB_OPTION = MARIADB_MULTI_STATEMENTS | MARIADB_NO_CACHE | MARIADB_FORWARD_CURSOR

# SQLSTATEs and server messages that mean "stopped by the query timeout":
# ODBC's own (HYT00/HYT01), PostgreSQL's statement_timeout (57014) and
# MariaDB's max_statement_time (HY018 with error 1969).
TIMEOUT_STATES = ("HYT00", "HYT01", "57014")
TIMEOUT_MESSAGES = ("statement timeout", "max_statement_time exceeded", "timeout expired")
# MariaDB's CONN_TIMEOUT ends a silent handshake with errno 110 (ETIMEDOUT).
LOGIN_TIMEOUT_MESSAGES = ("system error: 110",)

_SECRET_PAIR = re.compile(r"(?i)\b(pwd|password|uid|user|token)\s*=\s*(\{[^}]*\}|[^;]*)")


def redact_odbc(text: str) -> str:
    """A connection string with its credentials blanked, for messages."""
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=***", text)


def _has_option(odbc: str, name: str) -> bool:
    return re.search(rf"(?i)(^|;)\s*{name}\s*=", odbc) is not None


def streaming_odbc(odbc: str, dialect: str, batch: int, login_timeout: int = 0) -> str:
    """Add the driver options Courier relies on; the connection string's own setting always wins.

    Mainly streaming: psqlodbc holds every row unless told to use a cursor
    (measured: 430 MB for 1M rows by default, ~30 MB with UseDeclareFetch),
    and so does sqliteodbc unless it steps (StepAPI). For MariaDB also its own
    login timeout and several statements per batch. The table of every
    driver's options is in docs/databases.md.
    """
    extra = ""
    if dialect == "postgresql" and not _has_option(odbc, "UseDeclareFetch"):
        extra = f"UseDeclareFetch=1;Fetch={batch};"
    elif dialect == "sqlite" and not _has_option(odbc, "StepAPI"):
        # sqliteodbc reads the whole result into memory before the first fetch
        # unless it steps through it row by row (bench/memory.py, docs/benchmarks.md).
        extra = "StepAPI=1;"
    elif dialect == "mysql":
        # The driver ignores ODBC's login timeout (a silent server hung it for
        # good, measured with 3.1.15); its own CONN_TIMEOUT is honoured.
        if login_timeout and not _has_option(odbc, "CONN_TIMEOUT"):
            extra += f"CONN_TIMEOUT={login_timeout};"
        if not _has_option(odbc, "NO_CACHE"):
            extra += "NO_CACHE=1;FORWARDONLY=1;"
        # A batch may hold several statements (an INSERT before the SELECT);
        # MariaDB's driver runs only one unless the client allows more
        # (CLIENT_MULTI_STATEMENTS; its MULTI_STATEMENTS=1 keyword had no
        # effect in 3.1.15). The no-cache flag streams the rows in the drivers
        # that can (not 3.1.15, Debian 12's: it keeps every row whatever the
        # options, docs/databases.md). A connection string with its own OPTION keeps it.
        if not _has_option(odbc, "OPTION"):
            extra += f"OPTION={MARIADB_OPTION};"
    if not extra:
        return odbc
    return f"{odbc.rstrip().rstrip(';')};{extra}"


def _state_and_message(exc: pyodbc.Error) -> tuple[str, str]:
    state = exc.args[0] if len(exc.args) > 1 else ""
    message = str(exc.args[1] if len(exc.args) > 1 else exc)
    message = re.sub(r"\s*\(SQL\w+\)", "", message)
    # Drivers repeat the state at the front ("[57014] ERROR: ..."); it is shown once already.
    message = re.sub(rf"^\s*\[{re.escape(state)}\]\s*", "", message) if state else message
    return state, redact_odbc(" ".join(message.split()))


def is_timeout(exc: pyodbc.Error) -> bool:
    state, message = _state_and_message(exc)
    return state in TIMEOUT_STATES or any(m in message.lower() for m in TIMEOUT_MESSAGES)


def _is_login_timeout(exc: pyodbc.Error) -> bool:
    return is_timeout(exc) or any(m in _state_and_message(exc)[1] for m in LOGIN_TIMEOUT_MESSAGES)


def map_error(exc: pyodbc.Error, label: str, doing: str) -> ClientError:
    state, message = _state_and_message(exc)
    permanent = state[:2] in PERMANENT_STATES or any(m in message.lower() for m in PERMANENT_MESSAGES)
    if state in ("HYT00", "HYT01"):
        permanent = False
    return ClientError(f"{doing} on {label} failed [{state}]: {message}", permanent=permanent)


def timeout_error(exc: pyodbc.Error, label: str, doing: str, limit: str) -> ClientError:
    """A query or login stopped by its time limit: the message names the limit (a retry may fare better)."""
    state, message = _state_and_message(exc)
    return ClientError(f"{doing} on {label} was stopped by the {limit} [{state}]: {message}", permanent=False)


@contextmanager
def connect(conn, *, batch: int = 5000):
    label = str(conn)
    # The login waits no longer than the run has left (drivers take whole seconds).
    login = deadline.limit(conn.login_timeout or None)
    login = math.ceil(login) if login else 0
    odbc = streaming_odbc(conn.odbc, conn.dialect, batch, login)
    try:
        cnxn = pyodbc.connect(odbc, timeout=login, autocommit=True)
    except pyodbc.Error as exc:
        deadline.check(f"Connecting to {label}")
        if conn.login_timeout and _is_login_timeout(exc):
            raise timeout_error(exc, label, "Connecting", f"login timeout of {conn.login_timeout} s") from None
        raise map_error(exc, label, "Connecting") from None
    try:
        set_encodings(cnxn, conn.dialect)
        _check_dialect(cnxn, conn)
        if conn.query_timeout:
            _apply_query_timeout(cnxn, conn)
        if conn.read_only:
            _apply_read_only(cnxn, conn)
        yield cnxn
    finally:
        _close(cnxn)


def _close(cnxn) -> None:
    if not cnxn.autocommit:  # a read-only PostgreSQL transaction: nothing in it is kept
        with suppress(pyodbc.Error):
            cnxn.rollback()
    cnxn.close()


# How text crosses each driver (issue 16; the table in docs/databases.md).
# The Unicode drivers of PostgreSQL and MariaDB take the SQL and parameters
# as UTF-16 and give text back in it, surrogate pairs included. sqliteodbc
# does not: its UTF-16 entry points split a character outside the BMP
# ("Zoë 😀" reached SQLite as "Zoë \rM ="), so it gets the SQL and
# parameters as UTF-8 through its narrow entry points, which SQLite keeps as
# they are. Its values come back right either way.
UTF16_TEXT = ("utf-16le", pyodbc.SQL_WCHAR)
UTF8_TEXT = ("utf-8", pyodbc.SQL_CHAR)
SENT_TEXT = {"sqlite": UTF8_TEXT}


def set_encodings(cnxn, dialect: str) -> None:
    encoding, ctype = SENT_TEXT.get(dialect, UTF16_TEXT)
    cnxn.setencoding(encoding=encoding, ctype=ctype)
    cnxn.setdecoding(pyodbc.SQL_CHAR, encoding="utf-8")
    cnxn.setdecoding(pyodbc.SQL_WCHAR, encoding="utf-16le")
    cnxn.setdecoding(pyodbc.SQL_WMETADATA, encoding="utf-16le")


def column_names(cursor, dialect: str) -> list[str]:
    names = [col[0] for col in cursor.description]
    return [_sqlite_column_name(name) for name in names] if dialect == "sqlite" else names


def _sqlite_column_name(name: str) -> str:
    """A column name as SQLite holds it, undoing the two faults of sqliteodbc's SQLDescribeColW.

    It counts the name's length in UTF-8 bytes, not characters, so a
    non-ASCII name comes with what follows its end in the buffer (its NUL,
    then the rest of an earlier, longer name); and when the name holds a
    character outside the BMP it gives each UTF-8 byte as a character of its
    own ("😀" as "ð\x9f\x98\x80"). Only a name that reads back as such a
    character is re-read: a real name like "Ã©" is left as it is.
    """
    name = name.split("\x00", 1)[0]  # a C string: SQLite's names hold no NUL
    if name.isascii() or max(map(ord, name)) > 0xFF:
        return name
    try:
        decoded = name.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return name
    return decoded if max(map(ord, decoded)) > 0xFFFF else name


# SQL_DBMS_NAME (lower case) → the dialect that database needs. SQL bounds
# (tasks/sqlbounds.py) and the read-only setting follow the connection's
# dialect, so a database that is not the dialect it is saved with is refused
# where that matters: SQLite always, the others when read only.
DBMS_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mysql", "mysql": "mysql", "microsoft sql server": "mssql"}


def _check_dialect(cnxn, conn) -> None:
    dbms = str(cnxn.getinfo(pyodbc.SQL_DBMS_NAME)).strip()
    needed = DBMS_DIALECTS.get(dbms.lower())
    if needed and needed != (conn.dialect or "other") and (needed == "sqlite" or conn.read_only):
        raise ClientError(
            f"{conn} reaches a {dbms} database, but its SQL dialect is not set to {dbms}: "
            f"set it, so that {dbms}'s bounds and read-only setting apply.",
            permanent=True,
        )


# Server-side limits where a driver ignores or refuses ODBC's query timeout
# (psqlodbc rejects the attribute; a limit the server enforces also ends the
# query itself, not just the client's wait).
SERVER_TIMEOUT_SQL = {
    "postgresql": "SET statement_timeout = {ms}",
    "mysql": "SET SESSION max_statement_time = {s}",
}


def _apply_query_timeout(cnxn, conn) -> None:
    seconds = int(conn.query_timeout)
    statement = SERVER_TIMEOUT_SQL.get(conn.dialect)
    try:
        if statement:
            cnxn.execute(statement.format(ms=seconds * 1000, s=seconds))
        else:
            cnxn.timeout = seconds
    except pyodbc.Error as exc:
        raise map_error(exc, str(conn), f"Setting the query timeout of {seconds} s") from None


# "Read only" is enforced by the server where it can be: the session refuses
# writes, whatever the SQL looks like. tasks/sqlbounds.py refuses the SQL that
# would switch it back. SQL Server and other databases have no such session
# setting: the ODBC access mode below is only a hint to the driver, which the
# server does not enforce, and ApplicationIntent=ReadOnly only routes to a
# readable replica; there a login with read rights only is the real guard.
READ_ONLY_SQL = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "sqlite": "PRAGMA query_only = 1",
}
SQL_MODE_READ_ONLY = 1
READ_ONLY_MESSAGES = ("read-only transaction", "read only transaction", "readonly database")


def _apply_read_only(cnxn, conn) -> None:
    statement = READ_ONLY_SQL.get(conn.dialect)
    try:
        if statement:
            cnxn.execute(statement)
        else:
            cnxn.set_attr(pyodbc.SQL_ATTR_ACCESS_MODE, SQL_MODE_READ_ONLY)
        if conn.dialect == "postgresql":
            _hold_read_only_transaction(cnxn)
    except pyodbc.Error as exc:
        raise map_error(exc, str(conn), "Making the session read only") from None


def _hold_read_only_transaction(cnxn) -> None:
    """Open the one transaction every batch runs in, and take its snapshot.

    Any statement may reset the session's default, even with the setting's
    name in a string (set_config('default_transaction_read_only', 'off',
    false)), but once a read-only transaction has taken its snapshot the
    server refuses to make it writable; only ending it could, and
    tasks/sqlbounds.py refuses the statements that end it.
    """
    cnxn.autocommit = False
    cnxn.execute("SELECT 1").fetchall()


def _query_error(exc: pyodbc.Error, conn, doing: str) -> ClientError:
    label = str(conn)
    if conn.query_timeout and is_timeout(exc):
        return timeout_error(exc, label, doing, f"query timeout of {conn.query_timeout} s set on the connection")
    state, message = _state_and_message(exc)
    if conn.read_only and any(m in message.lower() for m in READ_ONLY_MESSAGES):
        return ClientError(f"{doing} on {label} tried to change data, but the connection is read only [{state}]: {message}", permanent=True)
    return map_error(exc, label, doing)


class DatabaseClient(Client):
    """Each query connects on its own: all its batches run in one database session."""

    def test(self) -> str:
        with connect(self.conn) as cnxn:
            dbms = cnxn.getinfo(pyodbc.SQL_DBMS_NAME)
            version = cnxn.getinfo(pyodbc.SQL_DBMS_VER)
        return f"Connected to {dbms} {version} ({self.conn})."

    def run_query(self, batches: list[str], sink: RowSink, *, batch: int = 5000, values: Sequence[Sequence[str]] = ()) -> bool:
        """Row-count-only results (INSERT/UPDATE, NOCOUNT OFF) before the first result set with columns are skipped."""
        exported = False
        with connect(self.conn, batch=batch) as cnxn:
            cursor = cnxn.cursor()
            # The run's deadline cancels the query wherever it blocks: executing or fetching.
            with deadline.Watchdog(cursor.cancel, f"The query on {self.conn}", own=_watched_query_timeout(self.conn)):
                for number, sql in enumerate(batches, 1):
                    doing = "The query" if len(batches) == 1 else f"Batch {number} of the query"
                    bound = values[number - 1] if values else ()
                    try:
                        cursor.execute(sql, *bound) if bound else cursor.execute(sql)
                        exported = _export_results(cursor, sink, batch, exported, self.conn.dialect)
                    except pyodbc.Error as exc:
                        raise _query_error(exc, self.conn, doing) from None
        return exported


# Drivers that accept ODBC's query timeout and then ignore it: Courier's watchdog enforces it.
WATCHED_QUERY_TIMEOUT = ("sqlite",)


def _watched_query_timeout(conn) -> deadline.Deadline | None:
    if conn.dialect not in WATCHED_QUERY_TIMEOUT or not conn.query_timeout:
        return None
    return deadline.Deadline.after(conn.query_timeout, f"the query timeout of {conn.query_timeout} s set on the connection")


def _export_results(cursor, sink: RowSink, batch: int, exported: bool, dialect: str) -> bool:
    while True:
        if cursor.description and not exported:
            columns = column_names(cursor, dialect)
            sink(columns, _fetch_batches(cursor, batch))
            exported = True
        if not cursor.nextset():
            return exported


def _fetch_batches(cursor, batch: int) -> Iterator[list[tuple]]:
    while rows := cursor.fetchmany(batch):
        yield rows
        deadline.check("Fetching the query's rows")
