"""Runs waiting for other tasks: released when the last dependency succeeds, skipped when one fails.

A scheduled run of a task with dependencies is created "waiting" by
runs/state.py while they are not met (runs/dependencies.py has the rule).
When a run of a task ends, `after_run` (a follow-up, right after the retry
decision) looks at the runs waiting for that task: each is queued through
`state.start_run` once every dependency succeeded, or recorded skipped
naming the one that failed. The watch's pass settles every waiting run too
(`settle_all`), so nothing depends on a follow-up having run.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from runs import dependencies, state
from runs.models import LogLevel, Run, RunLog, RunStatus, Stage
from runs.pipeline.log import RunLogger

logger = logging.getLogger(__name__)


def settle(run: Run) -> str:
    """Queue, skip or keep waiting one waiting run; returns the status it has now."""
    verdict = dependencies.verdict(run.task, run.intended_at)
    if verdict.failed is not None:
        reason = dependencies.failed_reason(verdict.failed)
        skipped = state.move(run, RunStatus.SKIPPED, only_if={"status": RunStatus.WAITING},
                             finished_at=timezone.now(), error=reason, waiting_for="")
        if skipped:
            RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.WARNING, message=f"Skipped: {reason}")
        return RunStatus.SKIPPED
    if verdict.waiting:
        Run.objects.filter(pk=run.pk, status=RunStatus.WAITING).exclude(waiting_for=verdict.described).update(waiting_for=verdict.described)
        return RunStatus.WAITING
    start = state.start_run(run.task, run.trigger, waiting=run)
    if start.run is None or start.refused:
        return RunStatus.WAITING
    RunLog.objects.create(run=run, stage=Stage.CLAIM, level=LogLevel.INFO, message="Every task it waited for has succeeded: queued.")
    return RunStatus.QUEUED


def cancel(task, reason: str) -> list[Run]:
    """Cancel the task's waiting runs (a person decided not to wait); returns them."""
    cancelled = []
    for run in waiting_runs().filter(task=task):
        if state.move(run, RunStatus.CANCELLED, only_if={"status": RunStatus.WAITING}, finished_at=timezone.now(), error=reason):
            RunLog.objects.create(run=run, stage=Stage.FINISH, level=LogLevel.WARNING, message=reason)
            cancelled.append(run)
    return cancelled


def waiting_runs():
    return Run.objects.filter(status=RunStatus.WAITING).select_related("task__project").order_by("intended_at", "id")


def after_run(run: Run, log: RunLogger | None = None) -> None:
    """Follow-up: a run that is over may release or skip the runs waiting for its task (or change what they wait for)."""
    if run.status in Run.UNFINISHED:
        return
    for waiting in waiting_runs().filter(task__wait_for=run.task):
        outcome = settle(waiting)
        if log is not None and outcome != RunStatus.WAITING:
            log.info(Stage.FINISH, f"{waiting.task}, waiting for this task (run {waiting.pk}): {RunStatus(outcome).label.lower()}.")


def settle_all() -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in waiting_runs():
        outcome = settle(run)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
