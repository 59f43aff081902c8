"""The examples of docs/parameters-in-sql.md, run as tasks on the databases they are written for.

Each ```sql block marked <!-- tested: <dialect> --> must give the ```csv block
that follows it, with the table and parameters the page describes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyodbc
import pytest

from runs.models import RunStatus
from tests.database_support import csv_of, database, run_query

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parent.parent / "docs" / "parameters-in-sql.md"
PARAMS = {"start": "2024-03-01", "country": "NL", "top": "2", "ids": "1,3", "min": "4"}
VISITS = [(1, "2024-02-28", "NL", 5), (2, "2024-03-01", "NL", 7), (3, "2024-03-02", "BE", 2), (4, "2024-03-05", "NL", 4)]
FIXTURES = {"postgresql": "pg_odbc", "mysql": "mariadb_odbc", "sqlite": "sqlite_odbc"}


def examples() -> list[tuple[str, str, str]]:
    """(dialect, sql, csv) for each tested example, in page order."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for marked in re.finditer(r"<!-- tested: (\w+) -->\n```sql\n(.*?)```", text, re.S):
        result = re.compile(r"```csv\n(.*?)```", re.S).search(text, marked.end())
        found.append((marked.group(1), marked.group(2), result.group(1)))
    return found


def seed_visits(db) -> None:
    cnxn = pyodbc.connect(db.odbc)
    cnxn.execute("DROP TABLE IF EXISTS visits")
    cnxn.execute("CREATE TABLE visits (id INTEGER, day DATE, country VARCHAR(2), n INTEGER)")
    cnxn.cursor().executemany("INSERT INTO visits VALUES (?, ?, ?, ?)", VISITS)
    cnxn.commit()
    cnxn.close()


def test_the_page_has_examples_for_each_database():
    assert sorted({dialect for dialect, _, _ in examples()}) == ["mysql", "postgresql", "sqlite"]
    assert len(examples()) == 9


@pytest.mark.parametrize(("dialect", "sql", "expected"), examples(), ids=lambda v: v if v in FIXTURES else "")
def test_each_example_gives_the_result_shown(dialect, sql, expected, request):
    db = request.getfixturevalue(FIXTURES[dialect])
    seed_visits(db)
    run = run_query(database(db, read_only=True), sql, PARAMS)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == expected
