"""The PostgreSQL COPY fast path writes the same bytes as the ODBC path (runs/pipeline/pgcopy.py, issue 20).

A property test: random rows of every common PostgreSQL type (tests/pgcopy_support.py:
the awkward values of each type first, then random ones and NULLs) are read
by two real runs of the same task on a real PostgreSQL, one through COPY and
one with the connection's fast path switched off (ODBC, psqlodbc + pyodbc),
and the two files must be equal byte for byte, in every quoting mode COPY
can write, with CRLF, a line suffix, a tab or a pipe delimiter. The seed is
fixed so a failure repeats; COURIER_PGCOPY_SEED tries others.
"""

from __future__ import annotations

import os

import pytest

from runs.models import RunStatus
from tests import factories
from tests.database_support import database, run_query
from tests.delivery_support import log_text
from tests.pgcopy_support import KINDS, column, fill_table

pytestmark = pytest.mark.django_db

SEED = int(os.environ.get("COURIER_PGCOPY_SEED", "20"))
ROWS = 300
FAST = "Reading through PostgreSQL's COPY"
ALL_COLUMNS = f"SELECT {', '.join(column(i) for i in range(len(KINDS)))} FROM copy_rows ORDER BY k"
LAYOUTS = {
    "csv": {},
    "all quoted, CRLF and a suffix": {"output_quoting": "all", "output_line_ending": "crlf", "output_line_suffix": "~"},
    "tab, non-numeric": {"output_type": "text", "output_delimiter": "\\t", "output_quoting": "nonnumeric"},
    "pipe, CRLF, no header": {"output_type": "text", "output_delimiter": "|", "output_line_ending": "crlf", "output_headers": False},
    "semicolon, all quoted": {"output_type": "text", "output_delimiter": ";", "output_quoting": "all"},
}


@pytest.fixture(scope="module")
def copy_rows(pg_odbc):
    fill_table(pg_odbc, "copy_rows", SEED, ROWS)
    return pg_odbc


def both_paths(db, sql: str, name: str, **task_fields) -> tuple[bytes, bytes]:
    """The file of a run through COPY and of the same task's run through ODBC."""
    fast_conn = database(db)
    fast = run_query(fast_conn, sql, name=f"{name} (COPY)", **task_fields)
    slow_conn = factories.connection("database", name="odbc-only", dialect=db.dialect, odbc=db.odbc, query_timeout=60, copy_export=False)
    slow = run_query(slow_conn, sql, name=f"{name} (ODBC)", **task_fields)
    assert fast.status == slow.status == RunStatus.SUCCEEDED, (fast.error, slow.error)
    assert FAST in log_text(fast) and FAST not in log_text(slow)
    assert fast.rows == slow.rows
    return fast.files.get().stored.read(), slow.files.get().stored.read()


def first_difference(fast: bytes, slow: bytes, delimiter: bytes = b",") -> str:
    for number, (a, b) in enumerate(zip(fast.split(b"\n"), slow.split(b"\n")), 1):
        if a != b:
            for index, (x, y) in enumerate(zip(a.split(delimiter), b.split(delimiter))):
                if x != y:
                    return f"line {number}, field {index} (seed {SEED}): COPY {x[:200]!r}, ODBC {y[:200]!r}"
            return f"line {number} (seed {SEED}): COPY {a[:300]!r}, ODBC {b[:300]!r}"
    return f"lengths {len(fast)} and {len(slow)} (seed {SEED})"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_random_rows_of_every_type_are_written_byte_for_byte_as_through_odbc(copy_rows, layout):
    fast, slow = both_paths(copy_rows, ALL_COLUMNS, layout, **LAYOUTS[layout])
    assert fast.count(b"\n") >= ROWS
    delimiter = {"\\t": b"\t"}.get(LAYOUTS[layout].get("output_delimiter", ","), LAYOUTS[layout].get("output_delimiter", ",").encode())
    assert fast == slow, first_difference(fast, slow, delimiter)


@pytest.mark.parametrize("kind", range(len(KINDS)), ids=[kind.sql_type for kind in KINDS])
def test_each_type_alone_in_a_one_column_result(copy_rows, kind):
    """One column: the csv module's lone-field rules and PostgreSQL's lone \\. — and each cast on its own."""
    fast, slow = both_paths(copy_rows, f"SELECT {column(kind)} FROM copy_rows ORDER BY k", KINDS[kind].sql_type)
    assert fast == slow, first_difference(fast, slow)
