"""Builders for the database-source tests: a Courier connection to a fixture database, a task run on it, its rows."""

from __future__ import annotations

import pyodbc

from projects.models import Project
from runs.runner import execute
from runs.state import create_run
from tasks.models import TaskParameter
from tests import factories


def database(db, **fields):
    """A Database connection to an OdbcDatabase fixture (tests/servers_odbc.py)."""
    fields.setdefault("query_timeout", 60)
    fields.setdefault("dialect", db.dialect)
    return factories.connection("database", name=f"{db.dialect}-db", odbc=db.odbc, **fields)


def run_query(conn, sql: str, params: dict[str, str] | None = None, **fields):
    """Run `sql` as a task of its own, with `params` as the task's parameters (key: value)."""
    project = Project.objects.filter(name="Nightly").first() or factories.project()
    task = factories.query_task(project, conn, sql, output_name="out.csv", **fields)
    for position, (key, value) in enumerate((params or {}).items()):
        TaskParameter.objects.create(task=task, key=key, value=value, position=position)
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    return run


def csv_of(run) -> str:
    return run.files.get().stored.read().decode("utf-8")


def seed(db, table: str, rows: list[tuple]) -> None:
    cnxn = pyodbc.connect(db.odbc)
    cnxn.execute(f"DROP TABLE IF EXISTS {table}")
    cnxn.execute(f"CREATE TABLE {table} (id INTEGER, name VARCHAR(40))")
    cnxn.cursor().executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
    cnxn.commit()
    cnxn.close()


def rows_of(db, table: str) -> list[tuple]:
    """The table's rows in id order, read over a connection of the test's own."""
    cnxn = pyodbc.connect(db.odbc)
    try:
        return [tuple(row) for row in cnxn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()]
    finally:
        cnxn.close()
