"""Retries owned by Courier (SPEC §4, §5), never django-q2's redelivery.

After a failed run with attempts left, the next attempt is a new Run row in
state "retry scheduled" (attempt n+1, `retry_of` the failed run, the same
intended time) due after the task's delay × backoff^(n-1), plus a one-off
django-q2 schedule named "courier:retry:<run id>" that calls
`runs.jobs.start_retry(<run id>)` at that time. Permanent failures are
retried only when the task says "retry on every failure".

A retry of a failure in the delivery stage re-sends only what did not
arrive: the runner gives such runs the redelivery stage
(runs/pipeline/redelivery.py), which finds the stored files through
`retry_of`.

Other follow-ups (the failure mail, the sequence) ask for the run's next
attempt (runs/state.py `next_attempt`), so `schedule_retry` comes first in
`followups.STEPS`. A scheduled retry (state "retry scheduled") is started by
its schedule through `state.start_run`, like every other run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_q.models import Schedule

from projects.scheduling import zone_of
from runs import sequence, state
from runs.models import LogLevel, Run, RunLog, RunStatus, SiteState, Stage, Trigger
from runs.pipeline.log import RunLogger
from tasks.models import Task

logger = logging.getLogger(__name__)

RETRY_FUNC = "runs.jobs.start_retry"
# The one-off schedule of a retry is named after its run: "courier:retry:<run id>".
RETRY_PREFIX = "courier:retry:"
# A retry that finds the task busy waits at least this long before it looks again.
MIN_POSTPONE = timedelta(minutes=1)


def retry_delay(task: Task, failed_attempt: int) -> timedelta:
    """How long after failed attempt n the next one starts: delay × backoff^(n-1)."""
    return timedelta(minutes=task.retry_delay_minutes * task.retry_backoff ** (failed_attempt - 1))


def why_not(run: Run) -> str | None:
    """Why a failed run gets no retry, or None when it does."""
    task = run.task
    if run.status != RunStatus.FAILED:
        return f"the run {run.get_status_display().lower()}"
    if task.retry_max == 0:
        return "the task is not set to retry"
    if run.attempt > task.retry_max:
        return f"all {task.retry_max + 1} attempts are used"
    if run.waiting_for:
        return "the tasks it runs after did not succeed in time; a retry would not wait for them"
    if run.permanent and not task.retry_on_every_failure:
        return "the failure is permanent (trying again cannot help) and the task retries only transient failures"
    return None


def _when(run: Run, at: datetime) -> str:
    return f"{at.astimezone(zone_of(run.task.project)):%Y-%m-%d %H:%M:%S %Z}"


def create_schedule(retry: Run, at: datetime) -> Schedule:
    # repeats=-1: django-q2 deletes a one-off with negative repeats once it has fired.
    return Schedule.objects.create(
        name=f"{RETRY_PREFIX}{retry.pk}", func=RETRY_FUNC, args=repr((int(retry.pk),)),
        schedule_type=Schedule.ONCE, repeats=-1, next_run=at,
    )


def delete_schedule(run: Run) -> None:
    Schedule.objects.filter(name=f"{RETRY_PREFIX}{run.pk}").delete()
    if run.schedule_id:
        Schedule.objects.filter(pk=run.schedule_id).delete()


def schedule_retry(run: Run, log: RunLogger | None = None, *, now: datetime | None = None) -> Run | None:
    """Follow-up: plan the next attempt of a failed run, when the task's policy allows one."""
    if run.status != RunStatus.FAILED:
        return None
    existing = state.next_attempt(run)
    if existing is not None:
        return existing
    log = log or RunLogger(run)
    reason = why_not(run)
    if reason:
        if run.task.retry_max:
            log.info(Stage.FINISH, f"No retry: {reason}.")
        return None
    due = (now or timezone.now()) + retry_delay(run.task, run.attempt)
    with transaction.atomic():
        retry = state.create_run(
            run.task, Trigger.RETRY, attempt=run.attempt + 1, retry_of=run,
            intended_at=run.intended_at, due_at=due, status=RunStatus.RETRY_SCHEDULED,
        )
        retry.schedule_id = create_schedule(retry, due).pk
        retry.save(update_fields=["schedule_id"])
    total = run.task.retry_max + 1
    log.info(Stage.FINISH, f"Attempt {retry.attempt} of {total} is scheduled for {_when(run, due)} (run {retry.pk}).")
    why = f"{run.error_stage or 'unknown'} stage failed"
    RunLog.objects.create(run=retry, stage=Stage.CLAIM, message=f"Retry of run {run.pk} ({why}), due {_when(run, due)}.")
    return retry


def start_retry(run_id: int, now: datetime | None = None) -> str:
    """A retry's schedule fired: queue the run, unless paused, cancelled, or its task is busy."""
    now = now or timezone.now()
    run = Run.objects.select_related("task__project").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.RETRY_SCHEDULED:
        return "not pending"
    log = RunLogger(run)
    if SiteState.get().paused:
        # Its one-off schedule is gone now; resume gives it a new one.
        Run.objects.filter(pk=run.pk).update(schedule_id=None)
        log.warning(Stage.CLAIM, "The scheduler is paused: this retry waits until it is resumed.")
        return "paused"
    with transaction.atomic():
        start = state.start_run(run.task, run.trigger, retry=run)
        if start.run is None:
            return "not pending"
        if not start.refused:
            return "queued"
        due = now + max(retry_delay(run.task, 1), MIN_POSTPONE)
        schedule = create_schedule(run, due)
        state.postpone(run, due, schedule_id=schedule.pk)
    log.warning(Stage.CLAIM, f"Run {start.busy_with.pk} of this task is still active; the retry waits until {_when(run, due)}.")
    return "postponed"


def cancel_scheduled(runs: QuerySet, reason: str) -> list[Run]:
    """Cancel every scheduled retry among `runs`: the run is recorded cancelled and its schedule deleted."""
    cancelled = []
    for run in runs.filter(status=RunStatus.RETRY_SCHEDULED).select_related("task__project").order_by("id"):
        with transaction.atomic():
            changed = state.move(run, RunStatus.CANCELLED, only_if={"status": RunStatus.RETRY_SCHEDULED},
                                 finished_at=timezone.now(), error=reason)
            if changed:
                delete_schedule(run)
        if not changed:
            continue
        RunLog.objects.create(run=run, stage=Stage.FINISH, level=LogLevel.WARNING, message=reason)
        sequence.skip_rest(run)
        cancelled.append(run)
    return cancelled


def rearm_scheduled(now: datetime | None = None) -> int:
    """Give every scheduled retry without a live schedule a new one (after a pause, or a lost schedule)."""
    now = now or timezone.now()
    rearmed = 0
    for run in Run.objects.filter(status=RunStatus.RETRY_SCHEDULED).order_by("id"):
        if run.schedule_id and Schedule.objects.filter(pk=run.schedule_id).exists():
            continue
        delete_schedule(run)
        schedule = create_schedule(run, max(run.due_at, now))
        Run.objects.filter(pk=run.pk, status=RunStatus.RETRY_SCHEDULED).update(schedule_id=schedule.pk)
        rearmed += 1
    return rearmed
