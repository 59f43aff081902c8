"""A project starts its tasks: when its schedule fires, or by hand ("run all").

`fire` is called by `runs.jobs.fire_project` in a worker. The schedule is
re-armed first, so the trigger keeps firing whatever happens to this
firing's runs. A second delivery of the same firing finds runs with the same
intended time and does nothing (SPEC §11: the broker may deliver a message
twice).

No fire time is lost: a re-arm or a start that meets a database lock is
tried again (runs/transient.py); a start that still fails records a failed
run per task with the fire time and the error, so the retry policy and the
failure mail take over; and a firing that never got this far (its message
lost, or the database refused it for minutes) is fired again by the reaper
(`recover_lost`), late rather than never.

A firing also says when the scheduler really fired it (`fired`, stamped on
the message as it is queued, `stamp_fire_time`): fire times that passed while
the scheduler was down are recorded as missed and run late as the project's
policy says (runs/catchup.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from projects import scheduling
from projects.models import Project
from runs import catchup, followups, sequence, state, transient
from runs.models import Run, RunStatus, SiteState, Trigger
from runs.pipeline.log import RunLogger
from runs.runner import execute

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


def fire(project_id: int, kind: str, intended: datetime, fired_at: datetime | None = None, *, run_here: bool = False) -> str:
    """A trigger fired for `intended`; `fired_at` is when the scheduler fired it (None: on time).

    `run_here` (the firing job): see `_run_first_here`.
    """
    project = transient.when_locked(lambda: scheduling.after_firing(project_id, kind, intended),
                                    f"Re-arming the {kind} trigger of project {project_id}")
    if project is None:
        return f"project {project_id} no longer exists; its schedules are removed"
    if SiteState.get().paused:
        logger.warning("Scheduler paused: the %s trigger of project %s (%s) did not start its tasks.", kind, project, intended)
        return "paused: nothing started"
    if not scheduling.in_window(project, intended):
        return "outside the project's active window: nothing started"
    fired_at = fired_at or intended
    missed, now_due = catchup.split(project, kind, intended, fired_at)
    try:
        runs = transient.when_locked(
            lambda: start_project(project, Trigger.SCHEDULE, intended_at=now_due, dedupe=True) if now_due else [],
            f"Starting the {kind} firing of {project} for {intended.isoformat()}")
    except Exception as exc:  # noqa: BLE001 - whatever stopped the start, the fire time must be recorded
        logger.exception("The %s firing of %s for %s could not start its runs", kind, project, intended)
        unstarted = record_unstarted(project, now_due, exc)
        try:
            _record_missed(project, kind, missed, fired_at, started_on_time=False)
        except Exception:  # noqa: BLE001 - the same refusal again: the unstarted runs above already report it
            logger.exception("The missed fire times of %s before %s could not be recorded either", project, intended)
        return f"could not start the runs ({type(exc).__name__}: {exc}); {len(unstarted)} recorded as failed"
    _record_missed(project, kind, missed, fired_at, started_on_time=now_due is not None)
    skipped = sum(1 for run in runs if run.status == RunStatus.SKIPPED)
    said = (f"{len(runs)} run(s) for {project}" + (f", {skipped} skipped" if skipped else "")
            + (f", {len(missed)} missed fire time(s) recorded" if missed else ""))
    return said + (_run_first_here(runs) if run_here else "")


def _run_first_here(runs: list[Run]) -> str:
    """Run the firing's first queued run in this worker, now: one queue trip to its start instead of two.

    Its message is queued all the same (state.start_run did, on commit), so
    the run starts even if this worker dies first; whichever worker claims
    it first runs it (state.claim), the other finds it taken. Only the first:
    the firing job then takes as long as one run at most, as any job does,
    and the project's other runs go to whichever workers are free.
    """
    first = next((run for run in runs if run.status == RunStatus.QUEUED), None)
    if first is None:
        return ""
    ran = execute(first.pk)
    return f"; run {first.pk} {'ran here: ' + ran.status if ran else 'was taken by another worker'}"


def _record_missed(project: Project, kind: str, missed: list[datetime], fired_at: datetime, *, started_on_time: bool) -> None:
    """The fire times the scheduler missed while down, recorded (and run late as the project says) whether or not
    the firing's own start worked: they are lost otherwise."""
    if missed:
        # The catch-up window is measured from when the scheduler came back.
        catchup.record(project, missed, now=fired_at, started_on_time=started_on_time,
                       why=f"the scheduler was not running (the {kind} trigger fired {_minutes(fired_at - missed[0])} late)")


def _minutes(delta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def record_unstarted(project: Project, intended: datetime, error: Exception) -> list[Run]:
    """A failed run for each task the firing should have started and did not, then their follow-ups (retry, mail)."""
    at = timezone.localtime(intended, scheduling.zone_of(project))
    reason = f"The schedule fired for {at:%Y-%m-%d %H:%M %Z}, but the run could not be started: {type(error).__name__}: {error}"

    @transaction.atomic
    def record() -> list[Run]:
        due = sequence.ordered_tasks(project)[:1] if project.sequence else project.tasks.filter(enabled=True).order_by("name")
        recorded = [state.record_unstarted(task, Trigger.SCHEDULE, reason, intended_at=intended) for task in due]
        return [run for run in recorded if run is not None]

    missed = transient.when_locked(record, f"Recording the unstarted firing of {project}")
    for run in missed:
        followups.after_run(run, RunLogger(run))
    return missed


def recover_lost(now: datetime | None = None) -> int:
    """Fire again every schedule that fired but was never handled; returns how many.

    Its fire_project message was lost (a broker flush) or the database refused
    it for minutes: the schedule row still says "fired, not re-armed". Firing
    it now starts the runs for that fire time, late rather than never, and
    re-arms it; a firing that did start its runs starts nothing twice.
    """
    recovered = 0
    for schedule in scheduling.lost_firings(now or timezone.now()):
        project_id, kind = scheduling.parse_name(schedule.name)
        logger.warning("Schedule %s fired for %s and was never handled: firing it now.", schedule.name, schedule.next_run)
        fire(project_id, kind, schedule.next_run)
        recovered += 1
    return recovered
