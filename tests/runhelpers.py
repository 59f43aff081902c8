"""Helpers for tests of scheduling, retries and sequences: a real SQLite ODBC source and an in-test worker."""

from __future__ import annotations

import pyodbc

from runs.models import Run, RunStatus
from runs.runner import execute
from tests import factories


def source(db):
    """A database connection to the sqlite_odbc fixture's file, with a table `items` (empty)."""
    cnxn = pyodbc.connect(db.odbc)
    cnxn.execute("CREATE TABLE IF NOT EXISTS items (n INTEGER)")
    cnxn.commit()
    cnxn.close()
    return factories.connection("database", name="source", dialect="sqlite", odbc=db.odbc)


def add_item(db, n: int = 1) -> None:
    cnxn = pyodbc.connect(db.odbc)
    cnxn.execute("INSERT INTO items VALUES (?)", n)
    cnxn.commit()
    cnxn.close()


def ok_task(project, conn, name: str, **fields):
    return factories.query_task(project, conn, "select 1 as n", name=name, **fields)


def flaky_task(project, conn, name: str, **fields):
    """Fails transiently (“no rows”) while `items` is empty, succeeds once a row is there."""
    return factories.query_task(project, conn, "select n from items", name=name, source_fail_on_empty=True, **fields)


def broken_task(project, conn, name: str, **fields):
    """Fails permanently: its query is empty."""
    return factories.query_task(project, conn, "", name=name, **fields)


def drain(limit: int = 50) -> list[Run]:
    """Act as the worker: execute queued runs, oldest first, until none is left; returns them in order."""
    done = []
    for _ in range(limit):
        run = Run.objects.filter(status=RunStatus.QUEUED).order_by("id").first()
        if run is None:
            return done
        execute(run.pk)
        run.refresh_from_db()
        done.append(run)
    raise AssertionError(f"still queued runs after {limit}")
