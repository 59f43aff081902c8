"""What Task Details shows of a task's runs, and a cheap fingerprint of it for the page's live updates.

The page follows one run — its status badge and its log panel: a run not
over yet (running before queued before a scheduled retry), or else, of the
latest few, the one that ended last. So a start that was skipped because a
run was still going never hides that run, nor, later, how it ended.

`TaskState.version` changes whenever anything the page shows of the runs
changes: a new run, or a run's status (a run's files are listed when it
ends), or the state of a resend by hand (runs/resend.py). The live endpoint
sends the page again only then. One small query on the (task, -id) and
status indexes, and one on the resends; none on the file history, which
could only be filtered through a join.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db.models import Q

from runs.models import Delivery, Run, RunStatus
from tasks.models import Task

RECENT = 5  # the latest runs among which the one that ended last is found
FIELDS = ("id", "task_id", "status", "started_at", "finished_at")
# Task Details shows the resends among the task's latest this many (older ones: on their run's page).
RESENDS_SHOWN = 50
RESEND_FIELDS = ("id", "file_id", "status", "target", "error", "at", "queued_at", "resent_by__username")


@dataclass(frozen=True)
class TaskState:
    current: Run | None  # the run the page follows
    unfinished: tuple[tuple[int, str], ...]  # (id, status) of the runs not over yet
    latest_id: int  # the newest run, skipped ones included
    resends: tuple[Delivery, ...] = ()  # the task's latest resends by hand, newest first (`recent_resends`)

    @property
    def statuses(self) -> set[str]:
        return {status for _, status in self.unfinished}

    @property
    def active(self) -> Run | None:
        """The queued or running run that keeps Run now from starting another."""
        return self.current if self.current is not None and self.current.status in Run.ACTIVE else None

    @property
    def resending(self) -> bool:
        """A resend is queued or being sent: the page follows it as it follows a run."""
        return any(row.status in Delivery.UNFINISHED for row in self.resends)

    @property
    def version(self) -> str:
        current = f"{self.current.pk}-{self.current.status}" if self.current else "none"
        unfinished = ".".join(f"{pk}-{status}" for pk, status in self.unfinished)
        # Any resend's change of state shows; hashed, as fifty of them would make a long ETag.
        resends = hashlib.sha256(";".join(f"{row.pk}-{row.status}" for row in self.resends).encode()).hexdigest()[:12]
        return f"{current}:{self.latest_id}:{unfinished}:{resends}"


def _followed(unfinished: list[Run], recent: list[Run]) -> Run | None:
    if unfinished:
        # An active run before a retry waiting for its time; a running one before a queued one.
        return min(unfinished, key=lambda run: (run.status not in Run.ACTIVE, run.status != RunStatus.RUNNING, -run.pk))
    ended = [run for run in recent if run.finished_at is not None]
    if not ended:
        return recent[0] if recent else None
    return max(ended, key=lambda run: (run.finished_at, run.pk))


def state_runs(task: Task, newest: int = RECENT, *, whole: bool = False) -> list[Run]:
    """The task's runs not over yet and its `newest` latest runs, in one query on the (task, -id) and status indexes.

    `whole`: every field and who started each, for the pages that also show
    them (Task Details' run history); else only what the state needs.
    """
    latest = task.runs.order_by("-id").values("pk")[:newest]
    runs = task.runs.filter(Q(status__in=Run.UNFINISHED) | Q(pk__in=latest)).order_by("id")
    return list(runs.select_related("started_by") if whole else runs.only(*FIELDS))


def recent_resends(task: Task, newest: int = RESENDS_SHOWN) -> tuple[Delivery, ...]:
    """The task's `newest` latest resends by hand, newest first, with who asked: one query on the resent_by index."""
    rows = Delivery.objects.filter(run__task_id=task.pk, resent_by__isnull=False).select_related("resent_by")
    return tuple(rows.only(*RESEND_FIELDS).order_by("-id")[:newest])


def task_state(task: Task, runs: list[Run] | None = None, resends: tuple[Delivery, ...] | None = None) -> TaskState:
    """The state the page follows, from `state_runs` and `recent_resends` (read here when not given)."""
    runs = state_runs(task) if runs is None else runs
    resends = recent_resends(task) if resends is None else resends
    unfinished = [run for run in runs if run.status in Run.UNFINISHED]
    recent = sorted(runs, key=lambda run: -run.pk)[:RECENT]
    return TaskState(
        current=_followed(unfinished, recent),
        unfinished=tuple((run.pk, run.status) for run in unfinished),
        latest_id=recent[0].pk if recent else 0,
        resends=resends,
    )
