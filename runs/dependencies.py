"""What a scheduled run waits for: the tasks its task runs after, each to have succeeded for the same day or window.

A task may name other tasks, of any project, that must have succeeded first
(`Task.wait_for`). A dependency counts as done for a run intended at T when
it has a succeeded run intended on T's day in the waiting task's project
zone, or, when the task sets a window of W minutes, intended within W
minutes of T. A dependency whose run in that span ended failed (no retry to
come) or was cancelled makes the waiting run skipped, naming it.

Only the rule lives here (it reads runs, it changes none): runs/state.py
creates the waiting run, runs/waiting.py releases or skips it when a
dependency ends, runs/watch.py gives up at the task's deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from runs.models import Run, RunStatus
from tasks.models import Task


@dataclass(frozen=True)
class Verdict:
    """Where a run's dependencies stand."""

    # "Project/task (running)" for each dependency not done yet.
    waiting: list[str] = field(default_factory=list)
    # The run of a dependency that ended without success in the span, if any.
    failed: Run | None = None

    @property
    def described(self) -> str:
        return "; ".join(self.waiting)


def span(task: Task, intended_at: datetime) -> Q:
    """The intended times of a dependency's runs that count for a run of `task` intended at `intended_at`."""
    if task.wait_window_minutes is not None:
        window = timedelta(minutes=task.wait_window_minutes)
        return Q(intended_at__gte=intended_at - window, intended_at__lte=intended_at + window)
    zone = ZoneInfo(task.project.timezone)
    day = timezone.localtime(intended_at, zone).date()
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return Q(intended_at__gte=start, intended_at__lt=end)


def _standing(dependency: Task, runs) -> tuple[str | None, Run | None]:
    """(what it is still doing, or None when it succeeded; its final unsuccessful run, or None)."""
    if runs.filter(status=RunStatus.SUCCEEDED).exists():
        return None, None
    going = runs.filter(status__in=Run.UNFINISHED).order_by("-id").first()
    if going is not None:
        return f"{dependency} ({going.get_status_display().lower()}, run {going.pk})", None
    ended = runs.filter(status__in=Run.ENDED_UNSUCCESSFULLY).order_by("-id").first()
    if ended is not None:
        return None, ended
    return f"{dependency} (no run yet)", None


def verdict(task: Task, intended_at: datetime) -> Verdict:
    """Whether the dependencies of a run of `task` intended at `intended_at` are met, pending or failed."""
    counted = span(task, intended_at)
    waiting = []
    for dependency in task.wait_for.select_related("project").order_by("project__name", "name"):
        doing, failed = _standing(dependency, Run.objects.filter(counted, task=dependency))
        if failed is not None:
            return Verdict(failed=failed)
        if doing is not None:
            waiting.append(doing)
    return Verdict(waiting=waiting)


def failed_reason(run: Run) -> str:
    return f"{run.task} did not succeed (run {run.pk}, {run.get_status_display().lower()}), and this task runs after it."


def deadline(run: Run) -> datetime:
    return run.intended_at + timedelta(minutes=run.task.wait_deadline_minutes)
