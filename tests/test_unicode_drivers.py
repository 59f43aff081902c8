"""Text beyond ASCII, and beyond the Basic Multilingual Plane, arrives byte for byte (issue 16 item 6).

Emoji (outside the BMP), CJK and accented text, in values and in column
names, through the real SQLite3, PostgreSQL and MariaDB ODBC drivers into
the delivered CSV. The assertions are on the stored file's bytes.

The tables are filled over a path that does not go through the driver under
test where that driver is the doubtful one (SQLite: Python's own sqlite3),
so a fault on the way in cannot cancel one on the way out.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pyodbc
import pytest

from runs.models import RunStatus
from tests.database_support import database, run_query

pytestmark = pytest.mark.django_db

EMOJI = "Zoë 😀 𝄞"  # U+1F600 and U+1D11E need surrogate pairs in UTF-16
CJK = "東京都 中文 한국어"
ACCENTED = "Ñandú Ærøskøbing ĳ çà"
# Longer than any driver's first fetch buffer, so a value read in pieces is joined right.
LONG = "é😀中" * 1500
VALUES = [(1, EMOJI, CJK), (2, ACCENTED, LONG)]


def _expected(columns: list[str]) -> bytes:
    lines = [",".join(["id", *columns])] + [f"{row_id},{a},{b}" for row_id, a, b in VALUES]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _delivered(run) -> bytes:
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run.files.get().stored.read()


def _seed_sqlite(path: str, columns: list[str]) -> None:
    quoted = ", ".join(f'"{name}" TEXT' for name in columns)
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"CREATE TABLE words (id INTEGER, {quoted})")
        db.executemany("INSERT INTO words VALUES (?, ?, ?)", VALUES)
        db.commit()


def _seed_server(odbc: str, columns: list[str], quote: str) -> None:
    quoted = ", ".join(f"{quote}{name}{quote} TEXT" for name in columns)
    with closing(pyodbc.connect(odbc, autocommit=True)) as cnxn:
        cnxn.execute("DROP TABLE IF EXISTS words")
        cnxn.execute(f"CREATE TABLE words (id INTEGER, {quoted})")
        # Literals: MariaDB's connector 3.1.15 fails to send a long parameter in pieces (SQLPutData).
        for row_id, first, second in VALUES:
            cnxn.execute(f"INSERT INTO words VALUES ({row_id}, '{first}', '{second}')")


# MariaDB refuses characters outside the BMP in any identifier (a server
# rule: "Invalid utf8mb4 character string"), so its column names stay in it.
COLUMNS = {
    "sqlite_odbc": ["名前😀é", "Straße 東京"],
    "pg_odbc": ["名前😀é", "Straße 東京"],
    "mariadb_odbc": ["名前é", "Straße 東京"],
}


@pytest.mark.parametrize("fixture", ["sqlite_odbc", "pg_odbc", "mariadb_odbc"])
def test_values_and_column_names_of_a_table_arrive_byte_exact(fixture, request):
    db = request.getfixturevalue(fixture)
    columns = COLUMNS[fixture]
    if db.dialect == "sqlite":
        _seed_sqlite(db.name, columns)
    else:
        _seed_server(db.odbc, columns, "`" if db.dialect == "mysql" else '"')
    run = run_query(database(db), "SELECT * FROM words ORDER BY id")
    assert _delivered(run) == _expected(columns)


LITERAL_SQL = {
    "sqlite_odbc": "SELECT 'Zoë 😀 中文' AS \"名前😀\", 'Ærø' AS \"é\"",
    "pg_odbc": "SELECT 'Zoë 😀 中文' AS \"名前😀\", 'Ærø' AS \"é\"",
    "mariadb_odbc": "SELECT 'Zoë 😀 中文' AS `名前`, 'Ærø' AS `é`",
}


@pytest.mark.parametrize("fixture", ["sqlite_odbc", "pg_odbc", "mariadb_odbc"])
def test_text_written_in_the_query_arrives_byte_exact(fixture, request):
    # The case: an emoji in a SQL literal came out of SQLite as "Zoë \rM =".
    run = run_query(database(request.getfixturevalue(fixture)), LITERAL_SQL[fixture])
    header = "名前,é" if fixture == "mariadb_odbc" else "名前😀,é"
    assert _delivered(run) == f"{header}\nZoë 😀 中文,Ærø\n".encode()


@pytest.mark.parametrize("fixture", ["sqlite_odbc", "pg_odbc", "mariadb_odbc"])
def test_a_bound_parameter_beyond_the_bmp_arrives_byte_exact(fixture, request):
    run = run_query(database(request.getfixturevalue(fixture)), "SELECT :word AS word", {"word": EMOJI + " " + CJK})
    assert _delivered(run) == f"word\n{EMOJI} {CJK}\n".encode()


def test_sqlite_column_names_without_non_ascii_text_are_left_alone(sqlite_odbc):
    # The repair of SQLite's column names must not touch a name that only looks like mojibake.
    run = run_query(database(sqlite_odbc), "SELECT 1 AS \"Ã©\", 2 AS \"plain\"")
    assert _delivered(run) == "Ã©,plain\n1,2\n".encode()
