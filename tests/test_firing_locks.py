"""A schedule's firing on the embedded SQLite database is never lost: locks are waited out, refusals recorded.

Another connection holds SQLite's one write lock (as a worker writing its
run's rows does) while the firing runs; the firing's own wait for the lock
(the busy timeout, 30 s in production) is cut short so the test is quick.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from django.core import mail
from django.db import connection
from django_q.models import Schedule

from runs import firing, jobs
from runs.models import Run, RunStatus, Trigger
from tasks.models import Notification
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
UTC = timezone.utc


@contextmanager
def write_lock_held_by_another_connection(seconds: float):
    """Another connection takes the write lock now and gives it back after `seconds`."""
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(connection.settings_dict["NAME"], timeout=30, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(10)
    try:
        yield
    finally:
        holder.join()


def short_busy_wait(milliseconds: int = 100) -> None:
    connection.ensure_connection()
    connection.connection.execute(f"PRAGMA busy_timeout = {milliseconds}")


def refuse() -> None:
    """Called by a trigger: the database's refusal of a row, as a full disk or a broken index would refuse it."""
    raise OSError("no space left on device")


@pytest.fixture
def project(sqlite_odbc):
    made = factories.project("Hourly", cron="0 * * * *", timezone="UTC")
    conn = factories.connection("database", name="src", dialect="sqlite", odbc=sqlite_odbc.odbc)
    for name in ("a", "b"):
        factories.query_task(made, conn, "select 1 as n", name=name, retry_max=1, retry_delay_minutes=5)
    return made


def fired(project, at: datetime) -> Schedule:
    """django-q2's part of a firing: the schedule row marked fired (repeats 0) for `at`."""
    schedule = Schedule.objects.get(name=f"courier:project:{project.pk}:cron")
    Schedule.objects.filter(pk=schedule.pk).update(repeats=0, next_run=at)
    return schedule


def test_a_firing_that_meets_a_held_write_lock_waits_its_turn_and_starts_every_run(project):
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    schedule = fired(project, at)
    short_busy_wait()
    with write_lock_held_by_another_connection(1.5):
        # The firing itself (the job would then run the first run in its own worker: runs/firing.py _run_first_here).
        outcome = firing.fire(project.pk, "cron", at)

    assert outcome == "2 run(s) for Hourly"
    runs = Run.objects.filter(task__project=project).order_by("task__name")
    assert [(r.task.name, r.status, r.intended_at) for r in runs] == [("a", RunStatus.QUEUED, at), ("b", RunStatus.QUEUED, at)]
    schedule.refresh_from_db()
    assert schedule.repeats == 1 and schedule.next_run == at + timedelta(hours=1)


def test_a_firing_whose_runs_the_database_refuses_is_recorded_failed_reported_and_rearmed(project):
    Notification.objects.create(task=project.tasks.get(name="a"), event="failure", recipients="ops@example.test")
    Notification.objects.create(task=project.tasks.get(name="b"), event="failure", recipients="ops@example.test")
    project.tasks.filter(name="b").update(retry_max=0)
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    schedule = fired(project, at)
    connection.ensure_connection()
    connection.connection.create_function("refuse", 0, refuse)
    with connection.cursor() as cursor:
        # The database refuses a queued run (a full disk, a corrupt index …), yet records a failed one.
        cursor.execute("CREATE TRIGGER refuse_runs BEFORE INSERT ON runs_run WHEN NEW.status = 'queued' BEGIN SELECT refuse(); END")
    try:
        outcome = jobs.fire_project(project.pk, "cron", at.isoformat())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_runs")

    error = "OperationalError: user-defined function raised exception"
    assert outcome.startswith(f"could not start the runs ({error}); 2 recorded as failed"), outcome
    first = {r.task.name: r for r in Run.objects.filter(task__project=project, attempt=1)}
    for run in first.values():
        assert (run.status, run.trigger, run.intended_at, run.error_stage) == (RunStatus.FAILED, Trigger.SCHEDULE, at, "claim")
        assert run.error == f"The schedule fired for {at:%Y-%m-%d %H:%M} UTC, but the run could not be started: {error}"
    # The retry policy applies: task a tries again later, task b (no retries) mails its failure.
    assert Run.objects.get(retry_of=first["a"]).status == RunStatus.RETRY_SCHEDULED
    assert not Run.objects.filter(retry_of=first["b"]).exists()
    assert [m.to for m in mail.outbox] == [["ops@example.test"]]
    assert "could not be started" in mail.outbox[0].body
    schedule.refresh_from_db()
    assert schedule.repeats == 1 and schedule.next_run == at + timedelta(hours=1)


def test_a_late_firing_whose_start_the_database_refuses_still_records_the_fire_times_it_missed(project):
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    fired(project, at)
    connection.ensure_connection()
    connection.connection.create_function("refuse", 0, refuse)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TRIGGER refuse_runs BEFORE INSERT ON runs_run WHEN NEW.status = 'queued' BEGIN SELECT refuse(); END")
    try:
        # The scheduler was down for three hours: it fires the oldest time now; the latest is still due.
        outcome = jobs.fire_project(project.pk, "cron", at.isoformat(), (at + timedelta(hours=3, seconds=20)).isoformat())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_runs")

    assert outcome.startswith("could not start the runs"), outcome
    runs = Run.objects.filter(task__project=project, attempt__lte=1).order_by("intended_at", "task__name")
    missed = [at + timedelta(hours=h) for h in range(3)]
    assert [(r.task.name, r.intended_at, r.status) for r in runs if r.status == RunStatus.MISSED] == [
        (name, time, RunStatus.MISSED) for time in missed for name in ("a", "b")]
    due = at + timedelta(hours=3)
    assert sorted((r.task.name, r.status) for r in runs if r.intended_at == due) == [("a", RunStatus.FAILED), ("b", RunStatus.FAILED)]
