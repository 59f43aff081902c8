"""What Task Details shows of a task's runs, and a cheap fingerprint of it for the page's live updates.

The page follows one run — its status badge and its log panel: a run not
over yet (running before queued before a scheduled retry), or else, of the
latest few, the one that ended last. So a start that was skipped because a
run was still going never hides that run, nor, later, how it ended.

`TaskState.version` changes whenever anything the page shows of the runs
changes: a new run, or a run's status (a run's files are listed when it
ends). The live endpoint sends the page again only then. One small query
on the (task, -id) and status indexes; none on the file history, which could
only be filtered through a join.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from runs.models import Run, RunStatus
from tasks.models import Task

RECENT = 5  # the latest runs among which the one that ended last is found
FIELDS = ("id", "task_id", "status", "started_at", "finished_at")


@dataclass(frozen=True)
class TaskState:
    current: Run | None  # the run the page follows
    unfinished: tuple[tuple[int, str], ...]  # (id, status) of the runs not over yet
    latest_id: int  # the newest run, skipped ones included

    @property
    def statuses(self) -> set[str]:
        return {status for _, status in self.unfinished}

    @property
    def active(self) -> Run | None:
        """The queued or running run that keeps Run now from starting another."""
        return self.current if self.current is not None and self.current.status in Run.ACTIVE else None

    @property
    def version(self) -> str:
        current = f"{self.current.pk}-{self.current.status}" if self.current else "none"
        unfinished = ".".join(f"{pk}-{status}" for pk, status in self.unfinished)
        return f"{current}:{self.latest_id}:{unfinished}"


def _followed(unfinished: list[Run], recent: list[Run]) -> Run | None:
    if unfinished:
        # An active run before a retry waiting for its time; a running one before a queued one.
        return min(unfinished, key=lambda run: (run.status not in Run.ACTIVE, run.status != RunStatus.RUNNING, -run.pk))
    ended = [run for run in recent if run.finished_at is not None]
    if not ended:
        return recent[0] if recent else None
    return max(ended, key=lambda run: (run.finished_at, run.pk))


def state_runs(task: Task, newest: int = RECENT) -> list[Run]:
    """The task's runs not over yet and its `newest` latest runs, in one query on the (task, -id) and status indexes."""
    latest = task.runs.order_by("-id").values("pk")[:newest]
    return list(task.runs.filter(Q(status__in=Run.UNFINISHED) | Q(pk__in=latest)).only(*FIELDS).order_by("id"))


def task_state(task: Task, runs: list[Run] | None = None) -> TaskState:
    """The state the page follows, from `state_runs` (read here when not given)."""
    runs = state_runs(task) if runs is None else runs
    unfinished = [run for run in runs if run.status in Run.UNFINISHED]
    recent = sorted(runs, key=lambda run: -run.pk)[:RECENT]
    return TaskState(
        current=_followed(unfinished, recent),
        unfinished=tuple((run.pk, run.status) for run in unfinished),
        latest_id=recent[0].pk if recent else 0,
    )
