"""Databases over ODBC: connect with timeouts, stream a query's rows in batches."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyodbc

from connections.clients.base import ClientError

# SQLSTATE classes where trying again cannot help: syntax and access rules,
# data errors, a missing driver or data source, refused credentials.
PERMANENT_STATES = ("42", "22", "23", "28", "IM", "3D", "3F", "0A")
# "Can't open lib" (driver not installed) comes as 01000.
PERMANENT_MESSAGES = (
    "can't open lib", "data source name not found", "password authentication failed", "access denied",
    # sqliteodbc reports every error as HY000: recognise the permanent ones by their text.
    "syntax error", "incomplete input", "no such table", "no such column",
)

_SECRET_PAIR = re.compile(r"(?i)\b(pwd|password|uid|user|token)\s*=\s*(\{[^}]*\}|[^;]*)")


def redact_odbc(text: str) -> str:
    """A connection string with its credentials blanked, for messages."""
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=***", text)


def _has_option(odbc: str, name: str) -> bool:
    return re.search(rf"(?i)(^|;)\s*{name}\s*=", odbc) is not None


def streaming_odbc(odbc: str, dialect: str, batch: int) -> str:
    """Add the options that stop a driver from buffering a whole result set in memory.

    psqlodbc holds every row unless told to use a cursor (measured: 430 MB for
    1M rows by default, ~30 MB with UseDeclareFetch). The connection string's
    own setting wins.
    """
    extra = ""
    if dialect == "postgresql" and not _has_option(odbc, "UseDeclareFetch"):
        extra = f"UseDeclareFetch=1;Fetch={batch};"
    elif dialect == "mysql" and not _has_option(odbc, "NO_CACHE"):
        extra = "NO_CACHE=1;FORWARDONLY=1;"
    if not extra:
        return odbc
    return f"{odbc.rstrip().rstrip(';')};{extra}"


def map_error(exc: pyodbc.Error, label: str, doing: str) -> ClientError:
    state = exc.args[0] if len(exc.args) > 1 else ""
    message = str(exc.args[1] if len(exc.args) > 1 else exc)
    message = redact_odbc(re.sub(r"\s*\(SQL\w+\)", "", message)).strip()
    permanent = state[:2] in PERMANENT_STATES or any(m in message.lower() for m in PERMANENT_MESSAGES)
    if state in ("HYT00", "HYT01"):
        permanent = False
    return ClientError(f"{doing} on {label} failed [{state}]: {message}", permanent=permanent)


@contextmanager
def connect(conn, *, batch: int = 5000):
    label = str(conn)
    odbc = streaming_odbc(conn.odbc, conn.dialect, batch)
    try:
        cnxn = pyodbc.connect(odbc, timeout=conn.login_timeout or 0, autocommit=True)
    except pyodbc.Error as exc:
        raise map_error(exc, label, "Connecting") from None
    try:
        if conn.query_timeout:
            _apply_query_timeout(cnxn, conn)
        yield cnxn
    finally:
        cnxn.close()


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


RowSink = Callable[[list[str], Iterator[list[tuple]]], None]


def run_query(conn, batches: list[str], sink: RowSink, *, batch: int = 5000) -> bool:
    """Run the batches in order in one session; the first result set with columns goes to `sink`.

    Row-count-only results (INSERT/UPDATE, NOCOUNT OFF) before it are skipped.
    Returns whether a result set was found.
    """
    label = str(conn)
    exported = False
    with connect(conn, batch=batch) as cnxn:
        cursor = cnxn.cursor()
        for number, sql in enumerate(batches, 1):
            doing = "The query" if len(batches) == 1 else f"Batch {number} of the query"
            try:
                cursor.execute(sql)
                exported = _export_results(cursor, sink, batch, exported)
            except pyodbc.Error as exc:
                raise map_error(exc, label, doing) from None
    return exported


def _export_results(cursor, sink: RowSink, batch: int, exported: bool) -> bool:
    while True:
        if cursor.description and not exported:
            columns = [col[0] for col in cursor.description]
            sink(columns, _fetch_batches(cursor, batch))
            exported = True
        if not cursor.nextset():
            return exported


def _fetch_batches(cursor, batch: int) -> Iterator[list[tuple]]:
    while rows := cursor.fetchmany(batch):
        yield rows


def test(conn) -> str:
    with connect(conn) as cnxn:
        dbms = cnxn.getinfo(pyodbc.SQL_DBMS_NAME)
        version = cnxn.getinfo(pyodbc.SQL_DBMS_VER)
    return f"Connected to {dbms} {version} ({conn})."
