"""ODBC source databases: a throwaway database + login on the machine's PostgreSQL
and MariaDB, and a SQLite file (TESTING.md section 7).

These talk to pyodbc only, never to Django's connection, so they need no
``django_db`` mark and work without the Django test database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.servers_common import HOST

__all__ = ["OdbcDatabase", "pg_odbc", "mariadb_odbc", "sqlite_odbc"]

PG_PORT = 5432
MARIADB_PORT = 3306
PG_ADMIN = f"Driver={{PostgreSQL Unicode}};Server={HOST};Port={PG_PORT};Database=postgres;Uid=postgres;"
MARIADB_ADMIN = f"Driver={{MariaDB Unicode}};Server={HOST};Port={MARIADB_PORT};Uid=root;Pwd=;"


@dataclass(frozen=True)
class OdbcDatabase:
    """A database reachable with ``pyodbc.connect(odbc)`` (autocommit off: commit).

    ``dialect`` is "postgresql", "mysql" or "sqlite". ``name`` is the database (and,
    for server databases, also the login ``user``); for SQLite it is the file path.
    On this machine PostgreSQL's pg_hba trusts 127.0.0.1, so PG ignores ``password``;
    MariaDB checks it.
    """

    odbc: str
    dialect: str
    name: str
    user: str = ""
    password: str = ""


def _pyodbc(driver: str, package: str) -> ModuleType:
    # importorskip also covers "libodbc.so.2: cannot open shared object file".
    pyodbc = pytest.importorskip("pyodbc", reason="pyodbc or unixodbc missing")
    if driver not in pyodbc.drivers():
        pytest.skip(f"ODBC driver {driver!r} not registered (apt-get install {package})")
    return pyodbc


def _admin(pyodbc: ModuleType, conn_str: str) -> Any:
    # autocommit: CREATE/DROP DATABASE refuse to run inside a transaction.
    try:
        return pyodbc.connect(conn_str, autocommit=True, timeout=5)
    except pyodbc.Error as exc:
        pytest.skip(f"database server not reachable via {conn_str!r}: {exc}")


def _unique_name() -> tuple[str, str]:
    # Lower-case hex only: no quoting needed in either SQL dialect.
    return f"courier_t{secrets.token_hex(4)}", secrets.token_hex(12)


@pytest.fixture(scope="session")
def pg_odbc() -> Iterator[OdbcDatabase]:
    pyodbc = _pyodbc("PostgreSQL Unicode", "odbc-postgresql")
    name, password = _unique_name()
    with closing(_admin(pyodbc, PG_ADMIN)) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        admin.execute(f"CREATE DATABASE {name} OWNER {name}")
    try:
        yield OdbcDatabase(
            f"Driver={{PostgreSQL Unicode}};Server={HOST};Port={PG_PORT};"
            f"Database={name};Uid={name};Pwd={password};",
            "postgresql", name, name, password,
        )
    finally:
        with closing(pyodbc.connect(PG_ADMIN, autocommit=True, timeout=5)) as admin:
            # FORCE ends connections the code under test forgot to close.
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {name}")


def _mariadb_accounts(name: str) -> list[str]:
    # Loopback TCP clients may be matched as 'localhost' or '127.0.0.1': create both.
    return [f"'{name}'@'127.0.0.1'", f"'{name}'@'localhost'"]


@pytest.fixture(scope="session")
def mariadb_odbc() -> Iterator[OdbcDatabase]:
    pyodbc = _pyodbc("MariaDB Unicode", "odbc-mariadb")
    name, password = _unique_name()
    with closing(_admin(pyodbc, MARIADB_ADMIN)) as admin:
        admin.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        for account in _mariadb_accounts(name):
            admin.execute(f"CREATE USER {account} IDENTIFIED BY '{password}'")
            admin.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO {account}")
    try:
        yield OdbcDatabase(
            f"Driver={{MariaDB Unicode}};Server={HOST};Port={MARIADB_PORT};"
            f"Database={name};Uid={name};Pwd={password};",
            "mysql", name, name, password,
        )
    finally:
        with closing(pyodbc.connect(MARIADB_ADMIN, autocommit=True, timeout=5)) as admin:
            _kill_mariadb_sessions(pyodbc, admin, name)
            admin.execute(f"DROP DATABASE IF EXISTS `{name}`")
            for account in _mariadb_accounts(name):
                admin.execute(f"DROP USER IF EXISTS {account}")


def _kill_mariadb_sessions(pyodbc: ModuleType, admin: Any, user: str) -> None:
    # A leftover open transaction would make DROP DATABASE wait on metadata locks.
    ids = [row[0] for row in admin.execute(
        "SELECT id FROM information_schema.processlist WHERE user = ?", user
    ).fetchall()]
    for session_id in ids:
        try:
            admin.execute(f"KILL {int(session_id)}")
        except pyodbc.Error:  # ended on its own meanwhile
            pass


@pytest.fixture
def sqlite_odbc(tmp_path: Path) -> OdbcDatabase:
    _pyodbc("SQLite3", "libsqliteodbc")
    path = tmp_path / "source.sqlite3"
    return OdbcDatabase(f"Driver={{SQLite3}};Database={path};", "sqlite", str(path))
