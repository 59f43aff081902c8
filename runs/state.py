"""The run row's own changes: create, queue, skip, claim, and the one rule every start obeys.

At most one run of a task is active at a time (SPEC §4). Every way a run
starts — a page, an admin action, a command, a trigger, a retry, the next
task of a sequence — comes through `start_run`, which locks the task row,
looks for an active run and, when it finds one, records a skipped run
("previous run still active") instead; a retry is not skipped but left
waiting, and its caller postpones it.

This is the bottom of the run engine: it imports models only. The runner,
the follow-ups (retries, sequences, mails) and the front door
(runs/services.py) call down into it.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from runs.models import LogLevel, Run, RunLog, RunStatus, Stage
from tasks.models import Task

logger = logging.getLogger(__name__)

EXECUTE_FUNC = "runs.jobs.execute_run"


def create_run(task: Task, trigger: str, *, user=None, intended_at: datetime | None = None,
               status: str = RunStatus.QUEUED, due_at: datetime | None = None, **extra) -> Run:
    """A new run row (queued and due now unless told otherwise); nothing is sent to a worker."""
    now = timezone.now()
    return Run.objects.create(
        task=task, trigger=trigger, started_by=user, intended_at=intended_at or now, due_at=due_at or now,
        status=status, **extra,
    )


def enqueue(run: Run) -> None:
    """Hand the run to a worker once the row is committed, so the worker can see it."""
    transaction.on_commit(lambda: async_task(EXECUTE_FUNC, run.pk, task_name=f"run-{run.pk}", group="runs"))


def record_skipped(task: Task, trigger: str, reason: str, *, intended_at: datetime, user=None, **extra) -> Run:
    """A run that never started, kept so that nothing is silently ignored."""
    run = create_run(task, trigger, user=user, intended_at=intended_at, status=RunStatus.SKIPPED,
                     finished_at=timezone.now(), error=reason, **extra)
    RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.WARNING, message=f"Skipped: {reason}")
    return run


def record_unstarted(task: Task, trigger: str, reason: str, *, intended_at: datetime, **extra) -> Run:
    """A run that was due but could not be started (the database refused it): failed, so the retry policy and the failure mail apply."""
    run = create_run(task, trigger, intended_at=intended_at, status=RunStatus.FAILED, finished_at=timezone.now(),
                     error=reason, error_stage=Stage.CLAIM, permanent=False, **extra)
    RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.ERROR, message=reason)
    return run


@dataclass(frozen=True)
class Start:
    """What came of asking `start_run` for a run."""

    # The run now queued, or the skipped run recorded, or the retry left waiting;
    # None when there was nothing to do (a repeated firing, a retry no longer waiting).
    run: Run | None
    # The active run that kept the task busy; None when the run was queued.
    busy_with: Run | None = None

    @property
    def refused(self) -> bool:
        return self.busy_with is not None


def start_run(
    task: Task, trigger: str, *, intended_at: datetime | None = None, user=None, sequence_from: Run | None = None,
    dedupe: bool = False, busy: QuerySet | None = None, queue: bool = True, retry: Run | None = None,
) -> Start:
    """Start a run of `task` now, unless one is still active: then record it skipped (or keep a retry waiting).

    `dedupe` makes a second delivery of the same firing do nothing; `busy`
    replaces "the task's active runs" (a sequence looks at its whole
    project); `queue=False` leaves the run for the caller to execute in its
    own process; `retry` is a waiting retry to queue instead of a new run.
    The task row stays locked until the caller's transaction ends, so two
    starts of one task cannot both see it idle. On SQLite, where
    select_for_update does nothing, the transaction itself is the lock: it
    begins IMMEDIATE (etlsite/settings.py), taking the database's one write
    lock before it looks for an active run.
    """
    with transaction.atomic():
        Task.objects.select_for_update().filter(pk=task.pk).first()
        if retry is not None:
            return _start_retry(task, retry, busy, queue)
        intended_at = intended_at or timezone.now()
        if dedupe and Run.objects.filter(task=task, trigger=trigger, intended_at=intended_at).exists():
            return Start(None)
        active = _active(task, busy)
        if active is not None:
            reason = f"previous run still active (run {active.pk} of {active.task}, {active.get_status_display().lower()})."
            skipped = record_skipped(task, trigger, reason, intended_at=intended_at, user=user, sequence_from=sequence_from)
            return Start(skipped, busy_with=active)
        run = create_run(task, trigger, user=user, intended_at=intended_at, sequence_from=sequence_from)
        if queue:
            enqueue(run)
    return Start(run)


def _active(task: Task, busy: QuerySet | None, *, besides: Run | None = None) -> Run | None:
    runs = Run.objects.filter(task=task, status__in=Run.ACTIVE) if busy is None else busy
    if besides is not None:
        runs = runs.exclude(pk=besides.pk)
    return runs.select_related("task__project").order_by("id").first()


def _start_retry(task: Task, retry: Run, busy: QuerySet | None, queue: bool) -> Start:
    active = _active(task, busy, besides=retry)
    if active is not None:
        return Start(retry, busy_with=active)
    # Conditional: a cancel, or a second firing of its schedule, may have got there first.
    queued = Run.objects.filter(pk=retry.pk, status=RunStatus.RETRY_SCHEDULED).update(
        status=RunStatus.QUEUED, schedule_id=None, due_at=timezone.now(),
    )
    if not queued:
        return Start(None)
    retry.refresh_from_db()
    if queue:
        enqueue(retry)
    return Start(retry)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(run_id: int) -> Run | None:
    """Take a waiting run for this process, or None if someone else has it or it was cancelled.

    A conditional UPDATE, not a lock: a second delivery of the same queue
    message changes zero rows and does nothing.
    """
    now = timezone.now()
    taken = Run.objects.filter(pk=run_id, status__in=Run.CLAIMABLE).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker_name()
    )
    if not taken:
        logger.info("Run %s was not claimed: already taken, finished or cancelled.", run_id)
        return None
    return Run.objects.select_related("task__project", "task__source_connection__organization").get(pk=run_id)


def next_attempt(run: Run) -> Run | None:
    """The attempt that follows this failed run and is not over yet, or None (then the failure is final)."""
    return run.retries.filter(status__in=Run.UNFINISHED).order_by("-id").first()

