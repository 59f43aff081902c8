"""Runs whose worker is gone, and what they leave behind: the reaper, beside the workers, never behind them.

While a run works, a thread of its worker writes `heartbeat_at` every
COURIER_HEARTBEAT_SECONDS (runs/ticker.py `Heartbeat`). A worker killed
outright (SIGKILL, a machine restart, django-q2's timeout guard) stops
beating; the reaper marks a running run that has been silent for
COURIER_REAP_AFTER_SECONDS as failed ("worker lost") and gives it the same
follow-ups as any failure (runs/followups.py): retry policy, sequence,
failure mail.

The reaper is not a queued job: queued, it waited behind the very runs that
kept every worker busy, exactly when a lost worker mattered most. Instead
every worker process of every cluster runs it in a side thread from the
moment it is spawned (`start_in_worker`, on django-q2's post_spawn signal),
so it runs while the worker's own thread is busy with a run for hours, on
each machine, with no process or schedule to add. Several reapers at once
are harmless: a run is marked lost by a conditional UPDATE, once.

Each pass (`patrol`) also queues again, once, a queued run no worker took
within COURIER_QUEUE_LOST_AFTER_SECONDS (its message lost), then fails it
"lost in the queue" (`recover_queued`), and does the same for resends
(runs/resend.py `recover`); fires again any schedule firing that was never
handled (runs/firing.py `recover_lost`), runs the watch (late alerts,
waiting runs past their deadline, missed fire times to run late:
runs/watch.py), and on this machine ends the
processes and removes the work folders of runs that no longer run — a killed
worker never removed its own. (A script dies with its worker at once in the
sandbox, runs/sandbox.py; what an unsandboxed one started is found by its
run's marker, runs/procs.py.) `manage.py reap_runs` reaps by hand.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from runs import firing, followups, procs, resend, state, watch
from runs.models import Run, RunStatus, Stage
from runs.pipeline import context
from runs.ticker import Ticker, queue_lost_after, reap_after

logger = logging.getLogger(__name__)

# The longest pause between two patrols; shorter when the reap delay is short (tests).
MAX_PATROL_SECONDS = 30.0


def patrol_every() -> float:
    """Seconds between patrols: a third of the silence that makes a run lost, at most 30."""
    return max(0.5, min(MAX_PATROL_SECONDS, reap_after().total_seconds() / 3))


def stale_runs(now: datetime | None = None, stale_after: timedelta | None = None):
    cutoff = (now or timezone.now()) - (stale_after or reap_after())
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    return Run.objects.filter(silent, status=RunStatus.RUNNING).select_related("task__project")


def reap(now: datetime | None = None, stale_after: timedelta | None = None) -> list[Run]:
    """Mark silent running runs failed ("worker lost") and apply the retry policy; returns them."""
    now = now or timezone.now()
    reaped = []
    for run in stale_runs(now, stale_after):
        seen = run.heartbeat_at or run.started_at
        message = (f"Worker lost: {run.worker or 'its worker'} gave no sign of life since "
                   f"{timezone.localtime(seen):%Y-%m-%d %H:%M:%S %Z}; the run was stopped without finishing.")
        # Only if nothing changed since we looked: a late heartbeat or finish wins.
        still = {"status": RunStatus.RUNNING, "heartbeat_at": run.heartbeat_at}
        if not followups.fail(run, still, now=now, message=message, stage=Stage.FINISH, permanent=False):
            continue
        reaped.append(run)
        logger.warning("Run %s of %s: %s", run.pk, run.task, message)
    return reaped


def recover_queued(now: datetime | None = None) -> tuple[list[Run], list[Run]]:
    """Queued runs no worker took within COURIER_QUEUE_LOST_AFTER_SECONDS: queued again once, then failed; returns both lists.

    A queued run has no worker on it by definition; one queued that long had
    its message lost (a Redis restart, a broker flush). The second time it
    fails "lost in the queue", and its retry policy, sequence and failure mail follow.
    """
    now = now or timezone.now()
    bound = queue_lost_after()
    requeued, failed = [], []
    for run in Run.objects.filter(status=RunStatus.QUEUED, due_at__lt=now - bound).select_related("task__project"):
        if run.requeued_at is None:
            if state.requeue(run, now=now):
                requeued.append(run)
                logger.warning("Run %s of %s: no worker took it in %s; queued again.", run.pk, run.task, bound)
            continue
        minutes = f"{bound.total_seconds() / 60:g}"
        message = (f"Lost in the queue: no worker took the run within {minutes} min, "
                   f"nor within {minutes} min of its being queued again.")
        still = {"status": RunStatus.QUEUED, "requeued_at": run.requeued_at}
        if followups.fail(run, still, now=now, message=message, stage=Stage.CLAIM, permanent=False):
            failed.append(run)
            logger.warning("Run %s of %s: %s", run.pk, run.task, message)
    return requeued, failed


def sweep_work_folders() -> list[Path]:
    """Remove this machine's run folders (COURIER_WORK_DIR/run-N) whose run is not running (or was deleted); returns them."""
    return context.sweep_work_folders(context.RUN_FOLDER_PREFIX, running_of, "a run that no longer runs")


def running_of(run_ids: set[int]) -> set[int]:
    return set(Run.objects.filter(pk__in=run_ids, status=RunStatus.RUNNING).values_list("pk", flat=True))


def kill_stray_processes() -> dict[int, list[int]]:
    """End what this machine's runs left running once the run no longer runs; returns the pids by run.

    A script in the sandbox dies with its worker; one run without it (or a
    process it started in a new session) may not, and carries its run's
    number (runs/procs.py RUN_MARKER).
    """
    strays = procs.stray_processes(running_of)
    for run_id, pids in strays.items():
        procs.kill_all(pids)
        logger.warning("Killed %s process(es) left running by run %s, which no longer runs: %s", len(pids), run_id, pids)
    return strays


def patrol() -> None:
    """One pass: lost runs reaped, lost firings fired again, what they left behind removed, the watch; each step on its own."""
    # This thread lives as long as its worker: a connection a database restart broke is replaced, not kept.
    close_old_connections()
    steps = (reap, recover_queued, resend.recover, firing.recover_lost, kill_stray_processes, sweep_work_folders,
             resend.sweep_work_folders, watch.watch)
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - one failing step (a database hiccup) must not stop the others
            logger.exception("The reaper's %s failed; it tries again on its next pass.", step.__name__)


class _Patrols:
    """This process's reaper thread (one per worker process)."""

    ticker: Ticker | None = None


def start_in_worker(**_signal) -> None:
    """django-q2's post_spawn signal, sent in each new worker process: start its reaper thread."""
    if _Patrols.ticker is None:
        _Patrols.ticker = Ticker(patrol_every(), patrol, name="courier-reaper").start()
