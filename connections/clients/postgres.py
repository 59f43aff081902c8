"""PostgreSQL through libpq (psycopg), for the COPY fast path of a database connection saved with an ODBC string.

The connection keeps one ODBC string; this module reads the libpq settings
out of it. It reads only a string it fully understands: a psqlodbc Unicode
driver with server, port, database, login, password and SSL mode, plus
the fetch options Courier itself adds. Any other option might change what
the ODBC driver returns (psqlodbc has dozens), so a string holding one is
`Unsupported` and the caller reads through ODBC instead. The session is
set up as psqlodbc sets up its own (it raises extra_float_digits to 2; the
other output settings are the server's defaults in both), with the
connection's query timeout and read-only setting applied the same way.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import errors, pq

from connections.clients.base import ClientError
from connections.clients.odbc import PERMANENT_STATES, TIMEOUT_STATES

# ODBC keyword (lower case) → libpq keyword.
LIBPQ_KEYWORDS = {
    "server": "host", "servername": "host", "port": "port", "database": "dbname",
    "uid": "user", "username": "user", "pwd": "password", "password": "password", "sslmode": "sslmode",
}
# Options that change how the driver fetches rows, not what the rows hold.
FETCH_OPTIONS = {"driver", "usedeclarefetch", "fetch"}
# psqlodbc's Unicode driver, by name or library; the ANSI driver converts text to the client's code page.
UNICODE_DRIVERS = ("postgresql unicode", "psqlodbcw")
# "cannot execute … in a read-only transaction"
READ_ONLY_STATE = "25006"
# psqlodbc's default SSL mode (libpq's own default would try SSL first).
PSQLODBC_SSLMODE = "disable"
# What psqlodbc sets on each connection it opens (the rest is the server's default for both).
PSQLODBC_SESSION = "SET extra_float_digits = 2"


class Unsupported(Exception):
    """The connection cannot be opened through libpq exactly as the ODBC driver would; the message says why."""


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int


def odbc_pairs(odbc: str) -> list[tuple[str, str]]:
    """The key=value pairs of an ODBC connection string, braces ({…}, }} for a }) read as ODBC reads them."""
    pairs, i, text = [], 0, odbc.strip()
    while i < len(text):
        equals = text.find("=", i)
        if equals < 0:
            if text[i:].strip(" ;"):
                raise Unsupported("the ODBC connection string has a part without “=”")
            break
        key = text[i:equals].strip(" ;").lower()
        i = equals + 1
        if text[i:i + 1] == "{":
            value, i = _braced(text, i + 1)
            i = text.find(";", i) + 1 or len(text)
        else:
            end = text.find(";", i)
            end = len(text) if end < 0 else end
            value, i = text[i:end].strip(), end + 1
        pairs.append((key, value))
    return pairs


def _braced(text: str, i: int) -> tuple[str, int]:
    value = []
    while i < len(text):
        if text[i] == "}":
            if text[i + 1:i + 2] != "}":
                return "".join(value), i + 1
            i += 1
        value.append(text[i])
        i += 1
    raise Unsupported("a value in braces in the ODBC connection string is not closed")


def libpq_settings(odbc: str) -> dict[str, str]:
    """libpq's keywords for a psqlodbc Unicode connection string; Unsupported naming the option that is not."""
    settings: dict[str, str] = {}
    driver = ""
    for key, value in odbc_pairs(odbc):
        if key == "driver":
            driver = value.lower()
        elif key in LIBPQ_KEYWORDS:
            settings[LIBPQ_KEYWORDS[key]] = value
        elif key not in FETCH_OPTIONS:
            # The option's name only: its value may be a secret.
            raise Unsupported(f"the ODBC connection string sets {key}, which may change the values the driver returns")
    if not any(name in driver for name in UNICODE_DRIVERS):
        raise Unsupported("the ODBC driver is not psqlodbc's Unicode driver (Driver={PostgreSQL Unicode})")
    if "host" not in settings:
        raise Unsupported("the ODBC connection string names no server")
    settings.setdefault("sslmode", PSQLODBC_SSLMODE)
    return settings


def _error(exc: psycopg.Error, conn, doing: str) -> ClientError:
    """The server's reason in the words the ODBC client uses (connections/clients/odbc.py)."""
    label, state = str(conn), exc.sqlstate or ""
    message = " ".join(((exc.diag.message_primary if exc.diag else None) or str(exc)).split())
    if state in TIMEOUT_STATES:
        limit = f"query timeout of {conn.query_timeout} s set on the connection"
        return ClientError(f"{doing} on {label} was stopped by the {limit} [{state}]: {message}", permanent=False)
    if state == READ_ONLY_STATE:
        return ClientError(f"{doing} on {label} tried to change data, but the connection is read only [{state}]: {message}", permanent=True)
    return ClientError(f"{doing} on {label} failed [{state}]: {message}", permanent=state[:2] in PERMANENT_STATES)


@contextmanager
def session(conn, settings: dict[str, str]) -> Iterator[psycopg.Connection]:
    """A libpq session set up as the ODBC path's: read only and with the query timeout when the connection says so.

    A read-only connection runs everything in one READ ONLY transaction, rolled back at the end.
    A login that runs out of time is a ClientError; one refused otherwise is Unsupported.
    """
    try:
        cnxn = psycopg.connect(**settings, connect_timeout=conn.login_timeout or None, autocommit=not conn.read_only)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())
        if conn.login_timeout and "timeout expired" in message:
            # Trying again through ODBC would only wait as long again.
            raise ClientError(f"Connecting on {conn} was stopped by the login timeout of {conn.login_timeout} s [08001]: {message}",
                              permanent=False) from None
        # Any other refusal is left to the ODBC driver to report, in the words its messages always had.
        raise Unsupported(f"logging in through libpq failed ({message})") from None
    try:
        if conn.read_only:
            cnxn.read_only = True  # the first statement opens the transaction: BEGIN READ ONLY
        cnxn.execute(PSQLODBC_SESSION)
        if conn.query_timeout:
            cnxn.execute(f"SET statement_timeout = {int(conn.query_timeout) * 1000}")
        yield cnxn
    finally:
        cnxn.close()  # a read-only transaction ends unfinished: nothing in it is kept


def describe(cnxn: psycopg.Connection, conn, query: str) -> list[Column]:
    """The result columns of `query`, read without fetching a row (it runs under LIMIT 0)."""
    try:
        cursor = cnxn.execute(f"SELECT * FROM (\n{query}\n) AS courier_query LIMIT 0")
    except psycopg.Error as exc:
        raise _error(exc, conn, "Describing the query") from None
    return [Column(column.name, column.type_code) for column in cursor.description or ()]


def type_names(cnxn: psycopg.Connection, oids: list[int]) -> dict[int, str]:
    rows = cnxn.execute("SELECT oid::int, format_type(oid, NULL) FROM pg_type WHERE oid = ANY(%s)", (oids,)).fetchall()
    return dict(rows)


def copy_out(cnxn: psycopg.Connection, conn, statement: str) -> Iterator[memoryview]:
    """The rows of a `COPY … TO STDOUT` statement, one message (one row) at a time.

    Straight from libpq: psycopg's own `Copy.read` passes each row through
    three layers of Python generators, a third of the time of a million-row
    extract (bench/extract.py). While no row is ready the wait is a select()
    on the socket, which lets the run's heartbeat and row-count threads go on.
    """
    pgconn = cnxn.pgconn
    result = pgconn.exec_(statement.encode())
    if result.status != pq.ExecStatus.COPY_OUT:
        raise _error(errors.error_from_result(result), conn, "The query")
    get = pgconn.get_copy_data
    try:
        while True:
            size, data = get(1)
            if size > 0:
                yield data
            elif size == 0:  # nothing complete yet: wait for the socket, then let libpq read it
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            else:
                break
    except psycopg.Error as exc:  # the connection itself went away
        raise _error(exc, conn, "The query") from None
    while (end := pgconn.get_result()) is not None:
        if end.status != pq.ExecStatus.COMMAND_OK:
            raise _error(errors.error_from_result(end), conn, "The query")
