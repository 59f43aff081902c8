"""Orphaned schedule rows: Courier's django-q2 rows ("courier:*") that nothing needs any more.

A row is needed while it matches an active trigger of its project
(projects/scheduling.py) or a pending retry (runs/retries.py). Here, above
both, because a retry's schedule is needed only while its run waits. (The
reaper's old every-minute row is needed no more: the reaper runs beside the
workers, runs/reaper.py.)
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django_q.models import Schedule

from projects.models import Project
from projects.scheduling import FIRE_FUNC, PREFIX, active_kinds, parse_name
from runs.models import Run, RunStatus
from runs.retries import RETRY_PREFIX


def find() -> list[Schedule]:
    """Courier's schedule rows that match no active trigger or pending retry; a second row of one name too."""
    projects = {project.pk: project for project in Project.objects.all()}
    # The pending retry that owns each row, asked with the rows (one query, not two).
    waiting = Run.objects.filter(status=RunStatus.RETRY_SCHEDULED, schedule_id=OuterRef("pk")).values("pk")[:1]
    seen: set[str] = set()
    found = []
    for schedule in Schedule.objects.filter(name__startswith=PREFIX).annotate(retry_run=Subquery(waiting)).order_by("pk"):
        if schedule.name in seen or not _matches(schedule, projects):
            found.append(schedule)
        seen.add(schedule.name)
    return found


def _matches(schedule: Schedule, projects: dict[int, Project]) -> bool:
    if schedule.name.startswith(RETRY_PREFIX):
        return f"{RETRY_PREFIX}{schedule.retry_run}" == schedule.name
    parsed = parse_name(schedule.name)
    if parsed is None or schedule.func != FIRE_FUNC:
        return False
    project = projects.get(parsed[0])
    return project is not None and parsed[1] in active_kinds(project)


def delete() -> int:
    return Schedule.objects.filter(pk__in=[schedule.pk for schedule in find()]).delete()[0]
