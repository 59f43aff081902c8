"""The embedded default database (one SQLite file) under concurrent use: no 500, no lost start, one active run.

Each thread below is a request or a command with its own database
connection to the same SQLite file, as the web server's threads, the
worker processes and `manage.py` commands are on a default install.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from runs.models import Run, RunStatus
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
PARALLEL = 20


def in_parallel(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` in `count` threads released at the same moment; returns what each returned (or raised)."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def one(number: int) -> None:
        try:
            start.wait()
            results[number] = work(number)
        except Exception as exc:  # noqa: BLE001 - the test looks at every outcome
            results[number] = exc
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def runs_of(task) -> dict[str, int]:
    statuses = list(Run.objects.filter(task=task).values_list("status", flat=True))
    return {status: statuses.count(status) for status in set(statuses)}


def test_the_embedded_database_is_sqlite_in_wal_mode_with_a_busy_timeout_and_immediate_transactions():
    assert connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert connection.transaction_mode == "IMMEDIATE"


def test_twenty_people_pressing_run_at_once_get_one_run_and_nineteen_skipped_never_a_500(staff_runner, sqlite_odbc):
    conn = factories.connection("database", name="src", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project("Busy"), conn, "select 1 as n")
    url = reverse("courier:task_action", args=[task.pk, "run"])
    clients = []
    for _ in range(PARALLEL):
        client = Client(raise_request_exception=False)
        client.force_login(staff_runner)
        clients.append(client)

    responses = in_parallel(PARALLEL, lambda n: clients[n].post(url))

    codes = sorted(getattr(r, "status_code", repr(r)) for r in responses)
    assert codes == [302] * PARALLEL, codes
    assert runs_of(task) == {RunStatus.QUEUED: 1, RunStatus.SKIPPED: PARALLEL - 1}
    active = Run.objects.get(task=task, status=RunStatus.QUEUED)
    for skipped in Run.objects.filter(task=task, status=RunStatus.SKIPPED):
        assert skipped.error.startswith(f"previous run still active (run {active.pk} ")
    # Each person is told what became of their press (the page's message, kept in the task's history).
    said = sorted(entry.get_change_message() for entry in LogEntry.objects.filter(object_id=str(task.pk)))
    assert said[-1] == f"Started run {active.pk} by hand."
    assert all(text.startswith(f"Not started: previous run still active (run {active.pk} ") for text in said[:-1])
    assert len(said) == PARALLEL


def test_twenty_run_task_commands_at_once_start_one_run_and_record_the_rest_skipped(sqlite_odbc):
    conn = factories.connection("database", name="src", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project("Busy"), conn, "select 1 as n", name="t")

    def run_task(_number: int) -> str:
        out = StringIO()
        try:
            call_command("run_task", "Busy/t", stdout=out, stderr=StringIO())
        except CommandError as exc:
            return f"exit {exc.returncode}: {exc}"
        return out.getvalue()

    outcomes = in_parallel(PARALLEL, run_task)

    crashed = [o for o in outcomes if not isinstance(o, str)]
    assert not crashed, crashed
    assert runs_of(task) == {RunStatus.QUEUED: 1, RunStatus.SKIPPED: PARALLEL - 1}
    assert sum("is queued" in o for o in outcomes) == 1
    assert sum(o.startswith("exit 1: ") and "skipped: previous run still active" in o for o in outcomes) == PARALLEL - 1
