"""Retries owned by Courier: timing and backoff, transient vs permanent, cancel, pause, overlap, the failure mail."""

from __future__ import annotations

import ast
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from runs import retries, services, state
from runs.models import Run, RunStatus, SiteState, Trigger
from runs.runner import execute
from tasks.models import Notification
from tests import factories
from tests.runhelpers import add_item, broken_task, drain, flaky_task, source

pytestmark = pytest.mark.django_db


def run_once(task, trigger=Trigger.MANUAL) -> Run:
    run = services.run_now(task, trigger=trigger)
    execute(run.pk)
    run.refresh_from_db()
    return run


def retry_of(run: Run) -> Run:
    return Run.objects.get(retry_of=run)


def test_backoff_multiplies_the_delay_for_each_further_attempt(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=3, retry_delay_minutes=10, retry_backoff=2.0)
    assert [retries.retry_delay(task, n) for n in (1, 2, 3)] == [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]

    run = run_once(task)
    delays = []
    while True:
        assert run.status == RunStatus.FAILED and not run.permanent
        nxt = Run.objects.filter(retry_of=run).first()
        if nxt is None:
            break
        delays.append(nxt.due_at - run.finished_at)
        assert (nxt.status, nxt.trigger, nxt.attempt, nxt.intended_at) == (RunStatus.RETRY_SCHEDULED, Trigger.RETRY, run.attempt + 1, run.intended_at)
        schedule = Schedule.objects.get(pk=nxt.schedule_id)
        assert schedule.name == f"courier:retry:{nxt.pk}" and schedule.func == "runs.jobs.start_retry"
        assert ast.literal_eval(schedule.args) == (nxt.pk,) and schedule.next_run == nxt.due_at and schedule.repeats == -1
        assert retries.start_retry(nxt.pk) == "queued"
        drain()
        run = Run.objects.get(pk=nxt.pk)
    # due = the moment the failure was handled (just after finished_at) + delay × backoff^(n-1)
    assert [round(d.total_seconds() / 60) for d in delays] == [10, 20, 40]
    assert run.attempt == 4  # retry_max 3 → 4 attempts in all
    assert "No retry: all 4 attempts are used." in [line.message for line in run.log_lines.all()]


def test_retry_is_due_exactly_delay_times_backoff_after_the_failure(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=5, retry_delay_minutes=3, retry_backoff=1.5)
    at = timezone.now()
    for attempt, minutes in [(1, 3), (2, 4.5), (3, 6.75)]:
        failed = state.create_run(task, Trigger.SCHEDULE, attempt=attempt)
        Run.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED, error="x")
        failed.refresh_from_db()
        nxt = retries.schedule_retry(failed, now=at)
        assert nxt.due_at == at + timedelta(minutes=minutes) and nxt.attempt == attempt + 1
        assert retries.schedule_retry(failed, now=at).pk == nxt.pk  # the step is idempotent


def test_failure_mail_only_when_no_retry_follows(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1, retry_delay_minutes=0)
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test")
    first = run_once(task)
    assert state.next_attempt(first) == retry_of(first)
    assert mail.outbox == []
    retries.start_retry(retry_of(first).pk)
    second = drain()[0]
    assert second.status == RunStatus.FAILED and state.next_attempt(second) is None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.test"]


def test_permanent_failure_is_retried_only_when_the_task_says_every_failure(sqlite_odbc):
    conn = source(sqlite_odbc)
    project = factories.project()
    strict = broken_task(project, conn, "strict", retry_max=2)
    eager = broken_task(project, conn, "eager", retry_max=2, retry_on_every_failure=True)
    run = run_once(strict)
    assert run.permanent and not Run.objects.filter(retry_of=run).exists()
    assert any("failure is permanent" in line.message for line in run.log_lines.all())
    run = run_once(eager)
    assert run.permanent and retry_of(run).status == RunStatus.RETRY_SCHEDULED


def test_retry_succeeds_once_the_cause_is_gone(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1, retry_delay_minutes=5)
    first = run_once(task)
    add_item(sqlite_odbc, 7)
    retries.start_retry(retry_of(first).pk)
    second = drain()[0]
    assert (second.status, second.attempt, second.rows, second.retry_of_id) == (RunStatus.SUCCEEDED, 2, 1, first.pk)
    assert retries.start_retry(second.pk) == "not pending"  # a second delivery of the schedule's message


def test_cancel_retry_removes_the_schedule_and_records_the_run_cancelled(sqlite_odbc, superuser):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1)
    pending = retry_of(run_once(task))
    cancelled = services.cancel_retry(task, user=superuser)
    assert cancelled.pk == pending.pk
    pending.refresh_from_db()
    assert pending.status == RunStatus.CANCELLED and pending.finished_at is not None
    assert pending.error == "Retry cancelled by root."
    assert not Schedule.objects.filter(pk=pending.schedule_id).exists()
    assert retries.start_retry(pending.pk) == "not pending"
    with pytest.raises(services.ServiceError, match="has no pending retry"):
        services.cancel_retry(task)


def test_cancel_retry_is_refused_while_the_task_runs(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1)
    pending = retry_of(run_once(task))
    busy = state.create_run(task, Trigger.MANUAL)
    Run.objects.filter(pk=busy.pk).update(status=RunStatus.RUNNING)
    with pytest.raises(services.ServiceError, match=f"is running \\(run {busy.pk}\\)"):
        services.cancel_retry(task)
    pending.refresh_from_db()
    assert pending.status == RunStatus.RETRY_SCHEDULED


def test_reschedule_cancels_pending_retries_and_rebuilds_schedules(sqlite_odbc):
    project = factories.project(cron="0 6 * * *")
    task = flaky_task(project, source(sqlite_odbc), "flaky", retry_max=1)
    pending = retry_of(run_once(task))
    Schedule.objects.filter(name__startswith=f"courier:project:{project.pk}:").delete()
    cancelled = services.reschedule_project(project)
    assert [run.pk for run in cancelled] == [pending.pk]
    assert Schedule.objects.filter(name=f"courier:project:{project.pk}:cron").count() == 1


def test_a_retry_waits_while_paused_and_gets_a_new_schedule_on_resume(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1, retry_delay_minutes=0)
    pending = retry_of(run_once(task))
    services.pause_scheduler()
    Schedule.objects.filter(pk=pending.schedule_id).delete()  # django-q2 deletes a fired one-off
    assert retries.start_retry(pending.pk) == "paused"
    pending.refresh_from_db()
    assert pending.status == RunStatus.RETRY_SCHEDULED and pending.schedule_id is None
    assert "The scheduler is paused" in pending.log_lines.last().message
    services.resume_scheduler()
    pending.refresh_from_db()
    assert Schedule.objects.get(pk=pending.schedule_id).name == f"courier:retry:{pending.pk}"
    assert not SiteState.get().paused


def test_a_retry_that_finds_its_task_busy_is_postponed(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1, retry_delay_minutes=3)
    pending = retry_of(run_once(task))
    busy = services.run_now(task)
    now = timezone.now()
    assert retries.start_retry(pending.pk, now=now) == "postponed"
    pending.refresh_from_db()
    assert pending.status == RunStatus.RETRY_SCHEDULED and pending.due_at == now + timedelta(minutes=3)
    assert Schedule.objects.get(pk=pending.schedule_id).next_run == pending.due_at
    assert f"Run {busy.pk} of this task is still active" in pending.log_lines.last().message
