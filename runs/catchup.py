"""Fire times the scheduler missed: each recorded as a "missed" run, then run late as the project's policy says.

When the scheduler was down (cluster stopped, machine off) over fire times of
a cron or interval trigger, django-q2 fires the first of them once when it
comes back, and Courier re-arms the trigger for the next time after now
(projects/scheduling.py). `split` tells, from the time the scheduler really
fired (stamped on the message, runs/firing.py `stamp_fire_time`), which
fire times were missed: every earlier one, and the latest too when it fired
more than COURIER_MISSED_AFTER_SECONDS late. A queue that was slow to hand
the firing to a worker does not count: the scheduler was up.

Each missed time becomes a run "missed" for each enabled task (no attempt).
The project's policy then decides what runs late, as runs with trigger
"catch-up": `none` (the default) nothing; `latest` the latest missed time,
unless a fire time was started on time in the same firing; `all` each one,
oldest first. Only times younger than the project's catch-up window run.
Catch-up runs go one at a time: the missed record keeps `catch_up_planned`
until its catch-up run exists, and the next one starts when the task is idle
again (`after_run`, a follow-up, and the watch's pass).

A fire time runs at most once: the missed record, its catch-up run and any
firing of the same time are held unique by the database (Run's constraint).
"Resume and catch up" after a pause records the paused fire times the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from projects import scheduling
from projects.models import MissedPolicy, Project
from runs import sequence, state
from runs.models import Run, RunStatus, Stage, Trigger
from runs.pipeline.log import RunLogger
from tasks.models import Task

logger = logging.getLogger(__name__)

# Kinds whose missed times count: a one-off that passed unfired still fires once, late (SPEC §2).
REPEATING = ("cron", "interval")
# A downtime of weeks must not write a row per minute without end: the latest ones are kept.
MAX_RECORDED = 500


def missed_after() -> timedelta:
    return timedelta(seconds=settings.COURIER_MISSED_AFTER_SECONDS)


def times_between(project: Project, kind: str, after: datetime, until: datetime) -> list[datetime]:
    """The trigger's fire times strictly after `after` and not after `until`, the latest MAX_RECORDED."""
    found: list[datetime] = []
    while True:
        batch = [fire.at for fire in scheduling.trigger_times(project, kind, after, 100) if fire.at <= until]
        found.extend(batch)
        if len(batch) < 100:
            return found[-MAX_RECORDED:]
        after = batch[-1]
        found = found[-MAX_RECORDED:]


def split(project: Project, kind: str, intended: datetime, fired_at: datetime) -> tuple[list[datetime], datetime | None]:
    """(the missed fire times, the fire time to start now or None) of a firing for `intended` fired at `fired_at`.

    A firing on time starts its own time, as always. A late one means the
    scheduler was down: its time and every later one up to `fired_at` were
    missed, except the latest when that one came due within the grace. Times
    closer together than the scheduler's pass (an interval of seconds) were
    never fired one by one: they fold into the next.
    """
    if fired_at - intended <= missed_after() or kind not in REPEATING or kind not in scheduling.active_kinds(project) \
            or scheduling.trigger_problem(project, kind):
        return [], intended
    times = [intended, *times_between(project, kind, intended, fired_at)]
    latest = times[-1]
    missed = [at for at, following in zip(times, times[1:]) if following - at >= scheduling.SCHEDULER_PASS]
    if latest < fired_at - missed_after():
        return [*missed, latest], None
    return missed, latest


def _planned(project: Project, missed: list[datetime], now: datetime, started_on_time: bool) -> set[datetime]:
    window = timedelta(minutes=project.catch_up_minutes)
    fresh = [at for at in missed if now - at <= window]
    if project.missed_policy == MissedPolicy.ALL:
        return set(fresh)
    if project.missed_policy == MissedPolicy.LATEST and fresh and fresh[-1] == missed[-1] and not started_on_time:
        return {fresh[-1]}
    return set()


def _reason(project: Project, at: datetime, why: str, planned: bool, now: datetime) -> str:
    local = timezone.localtime(at, scheduling.zone_of(project))
    if planned:
        then = "it runs late as a catch-up run"
    elif project.missed_policy == MissedPolicy.NONE:
        then = "the project's missed-run policy records missed runs only"
    elif now - at > timedelta(minutes=project.catch_up_minutes):
        then = f"it is older than the project's catch-up window ({project.catch_up_minutes} minutes)"
    else:
        then = "the project's policy runs only the latest missed fire time"
    return f"Missed: the fire time {local:%Y-%m-%d %H:%M %Z} passed while {why}; {then}."


def _tasks(project: Project) -> list[Task]:
    return sequence.ordered_tasks(project) if project.sequence else list(project.tasks.filter(enabled=True).order_by("name"))


def record(project: Project, missed: list[datetime], *, why: str, now: datetime | None = None,
           started_on_time: bool = False) -> list[Run]:
    """Record each missed fire time for each enabled task, plan what the policy runs late, and start the first."""
    now = now or timezone.now()
    planned = _planned(project, missed, now, started_on_time)
    tasks = _tasks(project)
    recorded = []
    with transaction.atomic():
        for number, task in enumerate(tasks):
            # A sequence runs late from its head; the rest follow its success.
            plan_here = number == 0 or not project.sequence
            for at in missed:
                run = state.record_missed(task, at, _reason(project, at, why, at in planned, now), planned=plan_here and at in planned)
                if run is not None:
                    recorded.append(run)
    if recorded:
        logger.warning("%s: %d missed fire time(s) recorded (%s), %d to run late.", project, len(missed), why, len(planned))
    continue_pending(project)
    return recorded


def pending(project: Project):
    return Run.objects.filter(task__project=project, status=RunStatus.MISSED, catch_up_planned=True)


def continue_pending(project: Project) -> Run | None:
    """Start the oldest fire time still to be run late, if the task (or the sequence) is idle; returns its run."""
    oldest = pending(project).select_related("task").order_by("intended_at", "id").first()
    if oldest is None:
        return None
    with transaction.atomic():
        if project.sequence:
            busy = Run.objects.filter(task__project=project, status__in=Run.UNFINISHED)
            if busy.exists():
                return None
            run = sequence.start_chain(project, Trigger.CATCH_UP, intended_at=oldest.intended_at, dedupe=True)
        else:
            start = state.start_run(oldest.task, Trigger.CATCH_UP, intended_at=oldest.intended_at, dedupe=True, if_idle=True)
            if start.refused:
                return None
            run = start.run
        # Started, or started before by someone else (dedupe): either way it is no longer to come.
        Run.objects.filter(pk=oldest.pk).update(catch_up_planned=False)
    return run


def after_run(run: Run, log: RunLogger | None = None) -> None:
    """Follow-up: once a run of the project is over, the next missed time to run late may start."""
    project = run.task.project
    if run.status in Run.UNFINISHED or not pending(project).exists() or state.next_attempt(run) is not None:
        return
    started = continue_pending(project)
    if started is not None and log is not None:
        log.info(Stage.FINISH, f"Catch-up: run {started.pk} follows for the missed fire time {started.intended_at.isoformat()}.")


def kick_all() -> int:
    """Start what is still to be run late in every project (the watch's pass); returns how many started."""
    projects = Project.objects.filter(pk__in=pending_projects())
    return sum(1 for project in projects if continue_pending(project) is not None)


def pending_projects():
    return Run.objects.filter(status=RunStatus.MISSED, catch_up_planned=True).values("task__project")


def after_pause(paused_at: datetime, now: datetime | None = None) -> list[Run]:
    """"Resume and catch up": every fire time while paused counts as missed, and each project's policy applies."""
    now = now or timezone.now()
    recorded = []
    for project in Project.objects.all():
        times = sorted({at for kind in scheduling.active_kinds(project) if kind in REPEATING
                        and not scheduling.trigger_problem(project, kind)
                        for at in times_between(project, kind, paused_at, now)})
        if times:
            recorded += record(project, times, why="the scheduler was paused", now=now)
    return recorded
