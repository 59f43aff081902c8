"""A project starts its tasks: when its schedule fires, or by hand ("run all").

`fire` is called by `runs.jobs.fire_project` in a worker. The schedule is
re-armed first, so the trigger keeps firing whatever happens to this
firing's runs. A second delivery of the same firing finds runs with the same
intended time and does nothing (SPEC §11: the broker may deliver a message
twice).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from projects import scheduling
from projects.models import Project
from runs import sequence, state
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
    return at if timezone.is_aware(at) else timezone.make_aware(at, timezone.utc)


def fire(project_id: int, kind: str, intended: datetime) -> str:
    project = scheduling.after_firing(project_id, kind, intended)
    if project is None:
        return f"project {project_id} no longer exists; its schedules are removed"
    if SiteState.get().paused:
        logger.warning("Scheduler paused: the %s trigger of project %s (%s) did not start its tasks.", kind, project, intended)
        return "paused: nothing started"
    if not scheduling.in_window(project, intended):
        return "outside the project's active window: nothing started"
    runs = start_project(project, Trigger.SCHEDULE, intended_at=intended, dedupe=True)
    skipped = sum(1 for run in runs if run.status == RunStatus.SKIPPED)
    return f"{len(runs)} run(s) for {project}" + (f", {skipped} skipped" if skipped else "")
