"""A project starts its tasks: when its schedule fires, or by hand ("run all").

`fire` is called by `runs.jobs.fire_project` in a worker. The schedule is
re-armed first, so the trigger keeps firing whatever happens to this
firing's runs. A second delivery of the same firing finds runs with the same
intended time and does nothing (SPEC §11: the broker may deliver a message
twice).

A firing also says when the scheduler really fired it (`fired`, stamped on
the message as it is queued, `stamp_fire_time`): fire times that passed while
the scheduler was down are recorded as missed and run late as the project's
policy says (runs/catchup.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timezone as dt_timezone

from django.utils import timezone

from projects import scheduling
from projects.models import Project
from runs import catchup, sequence, state
from runs.models import Run, RunStatus, SiteState, Trigger

logger = logging.getLogger(__name__)


def start_project(project: Project, trigger: str, *, intended_at: datetime | None = None, user=None,
                  dedupe: bool = False, queue: bool = True) -> list[Run]:
    """Start a project's enabled tasks: all at once, or the first of its sequence."""
    intended_at = intended_at or timezone.now()
    if project.sequence:
        run = sequence.start_chain(project, trigger, intended_at=intended_at, user=user, dedupe=dedupe, queue=queue)
        return [run] if run else []
    starts = [
        state.start_run(task, trigger, intended_at=intended_at, user=user, dedupe=dedupe, queue=queue)
        for task in project.tasks.filter(enabled=True).order_by("name")
    ]
    return [start.run for start in starts if start.run is not None]


def parse_intended(value: str | datetime | None) -> datetime:
    """The fire time django-q2 passes as text (Schedule.intended_date_kwarg), or now."""
    if value is None or value == "":
        return timezone.now()
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if timezone.is_aware(at) else timezone.make_aware(at, dt_timezone.utc)


def stamp_fire_time(sender, task: dict, **kwargs) -> None:
    """django-q2's pre_enqueue signal: a firing's message carries when the scheduler queued it.

    The scheduler fires a schedule within its pass of about 30 s; a firing
    queued much later than its fire time means the scheduler was down. The
    time the message then waits in a busy queue is no downtime.
    """
    if task.get("func") == scheduling.FIRE_FUNC and isinstance(task.get("kwargs"), dict):
        task["kwargs"].setdefault("fired", task.get("started", timezone.now()).isoformat())


def fire(project_id: int, kind: str, intended: datetime, fired_at: datetime | None = None) -> str:
    """A trigger fired for `intended`; `fired_at` is when the scheduler fired it (None: on time)."""
    project = scheduling.after_firing(project_id, kind, intended)
    if project is None:
        return f"project {project_id} no longer exists; its schedules are removed"
    if SiteState.get().paused:
        logger.warning("Scheduler paused: the %s trigger of project %s (%s) did not start its tasks.", kind, project, intended)
        return "paused: nothing started"
    if not scheduling.in_window(project, intended):
        return "outside the project's active window: nothing started"
    fired_at = fired_at or intended
    missed, now_due = catchup.split(project, kind, intended, fired_at)
    runs = start_project(project, Trigger.SCHEDULE, intended_at=now_due, dedupe=True) if now_due else []
    if missed:
        # The catch-up window is measured from when the scheduler came back.
        catchup.record(project, missed, now=fired_at, started_on_time=now_due is not None,
                       why=f"the scheduler was not running (the {kind} trigger fired {_minutes(fired_at - missed[0])} late)")
    skipped = sum(1 for run in runs if run.status == RunStatus.SKIPPED)
    return (f"{len(runs)} run(s) for {project}" + (f", {skipped} skipped" if skipped else "")
            + (f", {len(missed)} missed fire time(s) recorded" if missed else ""))


def _minutes(delta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
