"""Quiet alerts: how many runs of a task in a row have failed for good, and whether a failure mail went out since its last success.

A failure is final when no retry follows it (SPEC §3.9): the attempts of one
run count once, by their last outcome. Held, skipped and cancelled runs
neither break nor extend a streak; a success ends it.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from runs.models import Run, RunStatus


def failure_streak(run: Run, enough: int) -> int:
    """Final failures in a row that end with the final failure `run`, counted up to `enough`."""
    # A failure whose retry was cancelled stays final.
    retried = Run.objects.filter(retry_of=OuterRef("pk")).exclude(status=RunStatus.CANCELLED)
    outcomes = (
        Run.objects.filter(task_id=run.task_id, pk__lt=run.pk, status__in=Run.OUTCOMES)
        .annotate(retried=Exists(retried)).order_by("-id").values_list("status", "retried")
    )
    streak = 1
    for status, was_retried in outcomes.iterator():
        if status == RunStatus.SUCCEEDED or streak >= enough:
            break
        if not was_retried:
            streak += 1
    return streak


def alerted_since_last_success(run: Run) -> Run | None:
    """The latest run before `run` (and after the task's previous success) whose failure mail was sent, or None."""
    before = Run.objects.filter(task_id=run.task_id, pk__lt=run.pk)
    previous = before.filter(status=RunStatus.SUCCEEDED).order_by("-id").values_list("pk", flat=True).first()
    if previous is not None:
        before = before.filter(pk__gt=previous)
    return before.filter(failure_alerted=True).order_by("-id").first()
