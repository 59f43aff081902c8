"""The run row's own changes: create, queue, skip, claim, and the one rule every start obeys.

At most one run of a task is active at a time (SPEC §4). Every way a run
starts — a page, an admin action, a command, a trigger, a retry, the next
task of a sequence — comes through `start_run`, which locks the task row,
looks for an active run and, when it finds one, records a skipped run
("previous run still active") instead; a retry is not skipped but left
waiting, and its caller postpones it.

A scheduled run of a task that waits for other tasks (runs/dependencies.py)
is created "waiting" while they have not succeeded, and queued later through
`start_run(waiting=…)`; one whose dependency failed is recorded skipped. A
fire time is recorded at most once per task and trigger: the database holds
that rule (Run's constraint "run_once_per_fire_time"), and a second row for
it is dropped here, never raised.

Every change of a run's status happens here, too: each one also writes the
task's `LatestRun` row when the run is the task's newest, so that the lists
read a task's status from one row instead of searching its runs
(tests/test_latest_run.py holds every other module to that).

This is the bottom of the run engine: it imports models only. The runner,
the follow-ups (retries, sequences, mails) and the front door
(runs/services.py) call down into it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django_q.tasks import async_task

from runs import dependencies
from runs.models import LatestRun, LogLevel, Run, RunLog, RunStatus, Stage, Trigger
from tasks.models import Task

logger = logging.getLogger(__name__)

EXECUTE_FUNC = "runs.jobs.execute_run"


def create_run(task: Task, trigger: str, *, user=None, intended_at: datetime | None = None,
               status: str = RunStatus.QUEUED, due_at: datetime | None = None, **extra) -> Run:
    """A new run row (queued and due now unless told otherwise); nothing is sent to a worker."""
    now = timezone.now()
    run = Run.objects.create(
        task=task, trigger=trigger, started_by=user, intended_at=intended_at or now, due_at=due_at or now,
        status=status, **extra,
    )
    keep_latest(run)
    return run


def enqueue(run: Run) -> None:
    """Hand the run to a worker once the row is committed, so the worker can see it."""
    transaction.on_commit(lambda: async_task(EXECUTE_FUNC, run.pk, task_name=f"run-{run.pk}", group="runs"))


def create_once(task: Task, trigger: str, **fields) -> Run | None:
    """`create_run`, or None when the run's fire time is already recorded for this task and trigger."""
    if trigger not in Run.FIRE_TIME_TRIGGERS:
        return create_run(task, trigger, **fields)
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction goes on after a refusal
            return create_run(task, trigger, **fields)
    except IntegrityError:
        # Only the fire-time constraint (run_once_per_fire_time) means "already recorded"; its wording differs by
        # database, so the row it protects is looked for instead. Any other refusal is a real error.
        if not Run.objects.filter(task=task, trigger=trigger, intended_at=fields.get("intended_at")).exists():
            raise
        logger.info("%s: the %s run intended at %s is already recorded.", task, trigger, fields.get("intended_at"))
        return None


def record_skipped(task: Task, trigger: str, reason: str, *, intended_at: datetime, user=None, **extra) -> Run | None:
    """A run that never started, kept so that nothing is silently ignored (None: its fire time is already recorded)."""
    run = create_once(task, trigger, user=user, intended_at=intended_at, status=RunStatus.SKIPPED,
                      finished_at=timezone.now(), error=reason, **extra)
    if run is not None:
        RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.WARNING, message=f"Skipped: {reason}")
    return run


def record_missed(task: Task, intended_at: datetime, reason: str, *, planned: bool) -> Run | None:
    """A fire time the scheduler missed: a "missed" run with no attempt (None if the time is already recorded)."""
    run = create_once(task, Trigger.SCHEDULE, intended_at=intended_at, status=RunStatus.MISSED, finished_at=timezone.now(),
                      error=reason, catch_up_planned=planned)
    if run is not None:
        RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.WARNING, message=reason)
    return run


def record_unstarted(task: Task, trigger: str, reason: str, *, intended_at: datetime, **extra) -> Run | None:
    """A run due that could not be started (the database refused it): failed, so the retry policy and the failure mail apply.

    None when the fire time is already recorded (the start got that far before it failed).
    """
    run = create_once(task, trigger, intended_at=intended_at, status=RunStatus.FAILED, finished_at=timezone.now(),
                      error=reason, error_stage=Stage.CLAIM, permanent=False, **extra)
    if run is not None:
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
    waiting: Run | None = None, if_idle: bool = False,
) -> Start:
    """Start a run of `task` now, unless one is still active: then record it skipped (or keep a retry waiting).

    `dedupe` makes a second delivery of the same firing do nothing; `busy`
    replaces "the task's active runs" (a sequence looks at its whole
    project); `queue=False` leaves the run for the caller to execute in its
    own process; `retry` is a waiting retry, `waiting` a run that waited for
    other tasks, to queue instead of a new run; `if_idle` records nothing
    when the task is busy (a catch-up run then waits its turn). The task row
    stays locked until the caller's transaction ends, so two starts of one
    task cannot both see it idle. On SQLite, where select_for_update does
    nothing, the transaction itself is the lock: it begins IMMEDIATE
    (etlsite/settings.py), taking the database's one write lock before it
    looks for an active run.
    """
    with transaction.atomic():
        Task.objects.select_for_update().filter(pk=task.pk).first()
        if retry is not None:
            return _start_existing(task, retry, RunStatus.RETRY_SCHEDULED, busy, queue)
        if waiting is not None:
            return _start_existing(task, waiting, RunStatus.WAITING, busy, queue)
        intended_at = intended_at or timezone.now()
        if dedupe and Run.objects.filter(task=task, trigger=trigger, intended_at=intended_at).exists():
            return Start(None)
        active = _active(task, busy)
        if active is not None:
            if if_idle:
                return Start(None, busy_with=active)
            reason = f"previous run still active (run {active.pk} of {active.task}, {active.get_status_display().lower()})."
            skipped = record_skipped(task, trigger, reason, intended_at=intended_at, user=user, sequence_from=sequence_from)
            return Start(skipped, busy_with=active)
        if trigger in Run.DEPENDENT_TRIGGERS and task.wait_for.exists():
            return _start_dependent(task, trigger, intended_at, user, queue)
        run = create_once(task, trigger, user=user, intended_at=intended_at, sequence_from=sequence_from)
        if run is not None and queue:
            enqueue(run)
    return Start(run)


def _start_dependent(task: Task, trigger: str, intended_at: datetime, user, queue: bool) -> Start:
    """A run of a task that waits for others: queued if they succeeded, waiting, or skipped if one failed."""
    verdict = dependencies.verdict(task, intended_at)
    if verdict.failed is not None:
        return Start(record_skipped(task, trigger, dependencies.failed_reason(verdict.failed), intended_at=intended_at, user=user))
    status = RunStatus.WAITING if verdict.waiting else RunStatus.QUEUED
    run = create_once(task, trigger, user=user, intended_at=intended_at, status=status, waiting_for=verdict.described)
    if run is not None and status == RunStatus.WAITING:
        RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.INFO, message=f"Waiting for {verdict.described}.")
    elif run is not None and queue:
        enqueue(run)
    return Start(run)


def _active(task: Task, busy: QuerySet | None, *, besides: Run | None = None) -> Run | None:
    runs = Run.objects.filter(task=task, status__in=Run.ACTIVE) if busy is None else busy
    if besides is not None:
        runs = runs.exclude(pk=besides.pk)
    return runs.select_related("task__project").order_by("id").first()


def _start_existing(task: Task, run: Run, held_as: str, busy: QuerySet | None, queue: bool, **fields) -> Start:
    """Queue a run that was held (a scheduled retry, a run waiting for other tasks or for a person), unless the task is busy."""
    active = _active(task, busy, besides=run)
    if active is not None:
        return Start(run, busy_with=active)
    # Conditional: a cancel, a second firing of its schedule or a second click may have got there first.
    queued = Run.objects.filter(pk=run.pk, status=held_as).update(
        status=RunStatus.QUEUED, schedule_id=None, due_at=timezone.now(), waiting_for="", **fields,
    )
    if not queued:
        return Start(None)
    run.refresh_from_db()
    keep_latest(run)
    if queue:
        enqueue(run)
    return Start(run)


def release_held(run: Run, user=None, *, queue: bool = True) -> Start:
    """Queue a held run again to deliver its stored files (runs/pipeline/release.py), once.

    Obeys the one-active-run rule: while another run of the task is active the
    release is refused (`busy_with`). A conditional UPDATE from "held" makes a
    second release (a double click, a second person) change nothing: Start(None).
    """
    with transaction.atomic():
        Task.objects.select_for_update().filter(pk=run.task_id).first()
        return _start_existing(run.task, run, RunStatus.HELD, None, queue, decided_by=user, decided_at=timezone.now(), finished_at=None)


def discard_held(run: Run, reason: str, user=None) -> bool:
    """Record a held run as cancelled (its files are to be removed); False when it was no longer held."""
    now = timezone.now()
    return move(run, RunStatus.CANCELLED, only_if={"status": RunStatus.HELD}, decided_by=user, decided_at=now, finished_at=now, error=reason)


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
    run = Run.objects.select_related("task__project", "task__source_connection__organization").get(pk=run_id)
    keep_latest(run)
    return run


def finish(run: Run, status: str, **fields) -> None:
    """Record the end of the run this process claimed: its status and the fields given (rows, error, …)."""
    fields["finished_at"] = fields.get("finished_at") or timezone.now()
    run.status = status
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=["status", *fields])
    keep_latest(run)


def move(run: Run, status: str, *, only_if: dict | None = None, **fields) -> bool:
    """Change the run's status (and fields) if the row is still as `only_if` says; False when someone got there first.

    A conditional UPDATE, like `claim`: the reaper and a cancel may race a
    finishing worker. The run is re-read when it changed.
    """
    changed = Run.objects.filter(pk=run.pk, **(only_if or {})).update(status=status, **fields)
    if changed:
        run.refresh_from_db()
        keep_latest(run)
    return bool(changed)


def postpone(run: Run, due_at: datetime, **fields) -> None:
    """A waiting run is due later (a retry whose task was busy): its time on the lists moves with it."""
    Run.objects.filter(pk=run.pk).update(due_at=due_at, **fields)
    run.due_at = due_at
    keep_latest(run)


def requeue(run: Run, *, now: datetime) -> bool:
    """Hand a queued run no worker took to the queue again (its message was lost), once; False if it moved meanwhile.

    A second message for a run whose first one was only late is harmless: the
    claim is a conditional UPDATE, so whichever arrives second does nothing.
    """
    requeued = Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED, requeued_at__isnull=True, due_at=run.due_at).update(
        requeued_at=now, due_at=now,
    )
    if not requeued:
        return False
    run.refresh_from_db()
    RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.WARNING,
                          message="No worker took the run: its queue message was lost, so it is queued again.")
    enqueue(run)
    return True


def next_attempt(run: Run) -> Run | None:
    """The attempt that follows this failed run and is not over yet, or None (then the failure is final)."""
    return run.retries.filter(status__in=Run.UNFINISHED).order_by("-id").first()



# --------------------------------------------------------------------------
# The latest run of each task (runs.models.LatestRun)
# --------------------------------------------------------------------------


def _latest_values(run: Run) -> dict:
    return {"run_id": run.pk, "status": run.status, "at": run.started_at or run.due_at}


def keep_latest(run: Run) -> None:
    """Write `run` into its task's LatestRun row, unless the task has a newer run.

    One UPDATE in the common case. Run ids only grow, so "newer" is a higher
    id; the condition, not a lock, keeps a late change of an older run (a
    retry cancelled after a manual run began) from overwriting a newer one.
    """
    values = _latest_values(run)
    if LatestRun.objects.filter(task_id=run.task_id, run_id__lte=run.pk).update(**values):
        return
    row, made = LatestRun.objects.get_or_create(task_id=run.task_id, defaults=values)
    if not made and row.run_id < run.pk:  # a concurrent first run of the task wrote its row in between
        LatestRun.objects.filter(task_id=run.task_id, run_id__lt=run.pk).update(**values)


def refresh_latest(task_ids: Iterable[int] | None = None) -> int:
    """Rebuild the LatestRun rows of these tasks (None: of every task) from their runs; returns the rows written.

    For when runs went away (pruning, a superuser's delete) or were written
    in bulk; everyday changes go through `keep_latest`.
    """
    tasks = Task.objects.all() if task_ids is None else Task.objects.filter(pk__in=list(task_ids))
    newest = Run.objects.filter(task=OuterRef("pk")).order_by("-id").values("id")[:1]
    latest = {task_id: run_id for task_id, run_id in tasks.annotate(newest=Subquery(newest)).values_list("pk", "newest")}
    runs = Run.objects.filter(pk__in=[run_id for run_id in latest.values() if run_id]).only("id", "task_id", "status", "started_at", "due_at")
    rows = [LatestRun(task_id=run.task_id, **_latest_values(run)) for run in runs]
    stale = LatestRun.objects.all() if task_ids is None else LatestRun.objects.filter(task_id__in=list(latest))
    with transaction.atomic():
        stale.delete()
        LatestRun.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
