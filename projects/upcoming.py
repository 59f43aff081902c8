"""When projects fire next, for the lists, the details and the run plan.

The fire times come from projects/scheduling.py (the same maths that arms
the django-q2 schedules, daylight saving included); this module only merges
a project's triggers and remembers results for one page. No query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.utils import timezone

from projects import scheduling
from projects.models import Project

MAX_PER_TRIGGER = 1500  # a per-minute trigger fires 1,440 times a day; the plan stops there


Memo = dict[tuple, list[datetime]]


def _times(project: Project, kind: str, after: datetime, count: int, memo: Memo | None) -> list[datetime]:
    # Many projects share a cron expression ("0 6 * * *"): its times depend only on these fields.
    key = (project.cron, project.timezone, project.start_at, project.end_at, after, count) if kind == "cron" else None
    if memo is not None and key in memo:
        return memo[key]
    times = [fire.at for fire in scheduling.trigger_times(project, kind, after, count)]
    if memo is not None and key is not None:
        memo[key] = times
    return times


def _trigger_until(project: Project, kind: str, after: datetime, until: datetime | None, count: int, memo: Memo | None) -> list[datetime]:
    """One trigger's fire times up to `until`: asked for in growing batches, so a daily trigger costs a few, not `count`."""
    batch = count if until is None else min(count, 2)
    while True:
        times = _times(project, kind, after, batch, memo)
        if until is None or len(times) < batch or times[-1] > until or batch >= count:
            return [at for at in times if until is None or at <= until]
        batch = min(count, batch * 4)


def fire_times(project: Project, after: datetime, *, until: datetime | None = None, count: int = 5, memo: Memo | None = None) -> list[datetime]:
    """The project's next fire times over all triggers (at most `count`, none after `until`).

    Pass one `memo` dict for many projects at once (the run plan): cron times are then computed once per expression.
    """
    times = {at for kind in scheduling.active_kinds(project) for at in _trigger_until(project, kind, after, until, count, memo)}
    return sorted(times, key=lambda at: at.timestamp())[:count]


def next_run_lookup(now: datetime | None = None) -> Callable[[Project], datetime | None]:
    """project → its next fire time, remembered per project for one page."""
    now = now or timezone.now()
    memo: dict[int, datetime | None] = {}

    def lookup(project: Project) -> datetime | None:
        if project.pk not in memo:
            times = fire_times(project, now, count=1)
            memo[project.pk] = times[0] if times else None
        return memo[project.pk]

    return lookup


def hours_plan(projects: list[tuple[Project, list[str]]], start: datetime, hours: int = 24) -> list[tuple[datetime, Project, list[str]]]:
    """Every firing from `start` for `hours` hours, in time order: (when, project, its enabled task names)."""
    end = start + timedelta(hours=hours)
    memo: Memo = {}
    firings = [
        (at, project, names)
        for project, names in projects
        for at in fire_times(project, start, until=end, count=MAX_PER_TRIGGER, memo=memo)
    ]
    return sorted(firings, key=lambda firing: firing[0].timestamp())


def runs_per_hour(firings: list[tuple[datetime, Project, list[str]]], start: datetime, hours: int = 24) -> list[list[str]]:
    """For each hour from `start`: the "project/task" names that start in it (one entry per run)."""
    plan: list[list[str]] = [[] for _ in range(hours)]
    for at, project, names in firings:
        # A one-off whose time passed unfired goes at the scheduler's next pass: this hour.
        index = max(0, int((at - start).total_seconds() // 3600))
        if index < hours:
            plan[index].extend(f"{project.name}/{name}" for name in names)
    return plan


@dataclass(frozen=True)
class DayPlan:
    """The runs of the next day: each firing, and the "project/task" names per clock hour from the current one."""

    start: datetime  # the start of the current hour, in UTC
    firings: list[tuple[datetime, Project, list[str]]]
    hours: list[list[str]]

    @property
    def total(self) -> int:
        return sum(len(names) for names in self.hours)


def day_plan(projects: list[tuple[Project, list[str]]], now: datetime, hours: int = 24) -> DayPlan:
    """Every firing after `now` and at most `hours` later, counted per clock hour of the site's zone.

    The window starts now, not at the top of the hour: a firing earlier in this
    hour has gone, and one in the last hour of the window is still to come. So
    the hours are `hours` + 1, the first and the last of them in part.
    """
    start = timezone.localtime(now).replace(minute=0, second=0, microsecond=0).astimezone(dt_timezone.utc)
    firings = hours_plan(projects, now, hours)
    return DayPlan(start, firings, runs_per_hour(firings, start, hours + 1))
