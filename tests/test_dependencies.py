"""Tasks that run after other tasks: C waits for A and B (other projects) for the same intended day.

On a fixed clock (the intended times are given); the runs are real (SQLite
over ODBC), executed by an in-test worker. Nothing calls the watch unless the
test says so: a waiting run is released by the follow-up of the run it
waited for, so it starts with no scheduler pass at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.exceptions import ValidationError

from runs import firing, services, state, watch
from runs.models import Run, RunStatus, Trigger
from runs.runner import execute
from tasks.dependencies import refuse_cycle
from tasks.models import Notification
from tests import factories
from tests.runhelpers import broken_task, drain, flaky_task, ok_task, source

pytestmark = pytest.mark.django_db
SIX = datetime(2030, 1, 2, 5, 0, tzinfo=dt_timezone.utc)  # 06:00 in Amsterdam


@pytest.fixture
def conn(sqlite_odbc):
    return source(sqlite_odbc)


@pytest.fixture
def abc(conn):
    """C (project "Reports") waits for A ("Sales") and B ("Stock")."""
    a = ok_task(factories.project(name="Sales", timezone="Europe/Amsterdam"), conn, "A")
    b = ok_task(factories.project(name="Stock", timezone="Europe/Amsterdam"), conn, "B")
    reports = factories.project(name="Reports", cron="0 6 * * *", timezone="Europe/Amsterdam")
    c = ok_task(reports, conn, "C", retry_max=2)
    c.wait_for.set([a, b])
    return a, b, c


def fire_c(c, at: datetime = SIX) -> Run:
    firing.fire(c.project.pk, "cron", at, at)
    return Run.objects.get(task=c, intended_at=at)


def run_by_hand(task, at: datetime) -> Run:
    return execute(state.start_run(task, Trigger.MANUAL, intended_at=at, queue=False).run.pk)


def test_c_waits_for_a_and_b_and_starts_as_soon_as_the_last_succeeds(abc):
    a, b, c = abc
    waiting = fire_c(c)
    assert (waiting.status, waiting.waiting_for) == (RunStatus.WAITING, "Sales/A (no run yet); Stock/B (no run yet)")
    # Another start while it waits is refused as usual: the waiting run is the task's active run.
    assert services.run_now(c).error == f"previous run still active (run {waiting.pk} of Reports/C, waiting)."

    run_by_hand(a, SIX + timedelta(minutes=5))
    waiting.refresh_from_db()
    assert (waiting.status, waiting.waiting_for) == (RunStatus.WAITING, "Stock/B (no run yet)")
    run_by_hand(b, SIX + timedelta(minutes=20))
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.QUEUED  # no scheduler pass needed: B's follow-up released it
    assert drain() == [waiting] and Run.objects.get(pk=waiting.pk).status == RunStatus.SUCCEEDED


def test_a_success_of_another_day_does_not_count(abc):
    a, b, c = abc
    run_by_hand(a, SIX - timedelta(days=1))
    run_by_hand(b, SIX)
    assert fire_c(c).waiting_for == "Sales/A (no run yet)"


def test_a_window_counts_successes_intended_close_enough(abc):
    a, b, c = abc
    c.wait_window_minutes = 30
    c.save()
    run_by_hand(a, SIX - timedelta(minutes=40))
    run_by_hand(b, SIX - timedelta(minutes=10))
    assert fire_c(c).waiting_for == "Sales/A (no run yet)"
    run_by_hand(a, SIX + timedelta(minutes=25))
    assert Run.objects.get(task=c, intended_at=SIX).status == RunStatus.QUEUED


def test_when_a_fails_finally_c_is_skipped_naming_a(abc, conn, sqlite_odbc):
    a, b, c = abc
    flaky = flaky_task(a.project, conn, "A2", retry_max=1)
    c.wait_for.add(flaky)
    waiting = fire_c(c)
    failed = run_by_hand(flaky, SIX)
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.WAITING and "Sales/A2 (retry scheduled" in waiting.waiting_for  # a retry is to come

    retry = services.cancel_retry(flaky)  # no retry after all: A2 has failed finally
    assert retry.retry_of == failed
    watch.watch(SIX + timedelta(minutes=1))
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.SKIPPED
    assert waiting.error == f"Sales/A2 did not succeed (run {retry.pk}, cancelled), and this task runs after it."

    broken = broken_task(b.project, conn, "B2")
    c.wait_for.set([a, broken])
    tomorrow = fire_c(c, SIX + timedelta(days=1))
    failure = run_by_hand(broken, SIX + timedelta(days=1))  # permanent: final at once
    tomorrow.refresh_from_db()
    assert (tomorrow.status, tomorrow.error) == (
        RunStatus.SKIPPED, f"Stock/B2 did not succeed (run {failure.pk}, failed), and this task runs after it.")
    # And a firing after that failure is recorded skipped straight away.
    c.project.cron = "30 6 * * *"
    c.project.save()
    later = fire_c(c, SIX + timedelta(days=1, minutes=30))
    assert later.status == RunStatus.SKIPPED and "Stock/B2 did not succeed" in later.error


def test_a_run_still_waiting_at_its_deadline_fails_and_is_not_retried(abc, mailoutbox):
    a, b, c = abc
    c.wait_deadline_minutes = 120
    c.save()
    Notification.objects.create(task=c, event="failure", recipients="ops@example.test")
    waiting = fire_c(c)
    run_by_hand(a, SIX)
    watch.watch(SIX + timedelta(minutes=119))
    assert Run.objects.get(pk=waiting.pk).status == RunStatus.WAITING
    watch.watch(SIX + timedelta(minutes=120))
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.FAILED
    assert waiting.error == "Dependencies not met by 2030-01-02 08:00 CET: still waiting for Stock/B (no run yet)."
    assert not Run.objects.filter(retry_of=waiting).exists()  # a retry would not wait: none follows
    [mail] = mailoutbox
    assert mail.to == ["ops@example.test"] and "Dependencies not met by 2030-01-02 08:00 CET" in mail.body
    assert "none follows: the tasks it runs after did not succeed in time" in mail.body


def test_a_cycle_is_refused_naming_it(abc):
    a, b, c = abc
    with pytest.raises(ValidationError, match="Sales/A → Reports/C → Sales/A"):
        refuse_cycle(a, [c])
    with pytest.raises(ValidationError, match="Sales/A → Sales/A"):
        refuse_cycle(a, [a])
    refuse_cycle(a, [b])  # no loop: fine
