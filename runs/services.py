"""The front door: what the pages, the admin and the commands call to start, stop and repair runs.

A thin layer that only calls down (runs/state.py, firing, retries, the
reaper, projects/scheduling.py). Starting a run always goes through
`state.start_run`, which holds the rule "at most one active run per task":
a start that finds the task busy records a skipped run instead (SPEC §4).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from connections import audit
from projects import scheduling
from projects.models import Project
from runs import catchup, firing, followups, held, orphans, reaper, retries, sequence, state, waiting
from runs.models import Run, RunStatus, SiteState, Trigger
from runs.pipeline.log import RunLogger
from tasks.models import Task


class ServiceError(Exception):
    """An operation that was refused; the message says why and is fit to show."""


# --- starting runs --------------------------------------------------------------------------------


def run_now(task: Task, user=None, trigger: str = Trigger.MANUAL, *, queue: bool = True) -> Run:
    """Start a run of the task now, or record it skipped while one is active.

    `queue=False` leaves a started run for the caller to execute in its own process (`run_task --wait`).
    """
    return state.start_run(task, trigger, user=user, queue=queue).run


def run_project(project: Project, user=None, trigger: str = Trigger.MANUAL, queue: bool = True) -> list[Run]:
    """“Run all”: every enabled task now, honouring the sequence."""
    return firing.start_project(project, trigger, user=user, queue=queue)


def set_all_enabled(project: Project, enabled: bool) -> int:
    return project.tasks.exclude(enabled=enabled).update(enabled=enabled)


def enable_all(project: Project) -> int:
    return set_all_enabled(project, True)


def disable_all(project: Project) -> int:
    return set_all_enabled(project, False)


# --- held runs (the row guard's "hold the delivery") ---------------------------------------------


def release_held(run: Run, user=None, *, queue: bool = True) -> Run:
    """Deliver a held run's stored files (once); refused while the run is not held or the task is busy."""
    start = state.release_held(run, user, queue=queue)
    if start.run is None:
        raise ServiceError(f"Run {run.pk} of {run.task} is not held (any more); nothing was released.")
    if start.refused:
        raise ServiceError(f"{run.task} has an active run (run {start.busy_with.pk}); release run {run.pk} after it has ended.")
    return start.run


def discard_held(run: Run, user=None) -> Run:
    """Cancel a held run and remove its stored files; refused when it is not held."""
    if not held.discard(run, user):
        raise ServiceError(f"Run {run.pk} of {run.task} is not held (any more); nothing was discarded.")
    # Over without success now: a sequence stops here, and runs waiting for this task learn it.
    sequence.skip_rest(run)
    followups.after_run(run, RunLogger(run))
    return run


# --- retries and schedules ------------------------------------------------------------------------------


def cancel_retry(task: Task, user=None) -> Run:
    """Cancel the task's scheduled retry; refused while the task runs (that run may plan a new one)."""
    running = task.runs.filter(status=RunStatus.RUNNING).first()
    if running is not None:
        raise ServiceError(f"{task} is running (run {running.pk}); cancel the retry after that run has ended.")
    cancelled = retries.cancel_scheduled(task.runs.all(), reason=_by("Retry cancelled", user))
    if not cancelled:
        raise ServiceError(f"{task} has no pending retry.")
    return cancelled[-1]


def cancel_waiting(task: Task, user=None) -> Run:
    """Cancel the task's run that waits for other tasks."""
    cancelled = waiting.cancel(task, reason=_by("No longer waiting: cancelled", user))
    if not cancelled:
        raise ServiceError(f"{task} has no run waiting for other tasks.")
    return cancelled[-1]


def reschedule_project(project: Project, user=None) -> list[Run]:
    """Rebuild the project's schedules from its triggers and cancel its scheduled retries."""
    scheduling.sync_project(project)
    return retries.cancel_scheduled(Run.objects.filter(task__project=project), reason=_by("Retry cancelled by a reschedule", user))


def reschedule_task(task: Task, user=None) -> list[Run]:
    """Rebuild the schedules of the task's project and cancel the task's scheduled retries."""
    scheduling.sync_project(task.project)
    return retries.cancel_scheduled(task.runs.all(), reason=_by("Retry cancelled by a reschedule", user))


def reschedule_all(user=None) -> int:
    """Rebuild every schedule from the database: each project's and those of scheduled retries.

    Unlike the reschedule of one project, this recovery tool keeps scheduled
    retries (it gives any that lost its schedule a new one). Returns the
    number of armed trigger schedules.
    """
    armed = scheduling.sync_all()
    retries.rearm_scheduled()
    return armed


def orphaned_schedules() -> list[Schedule]:
    return orphans.find()


def delete_orphans() -> int:
    return orphans.delete()


def reap_runs() -> list[Run]:
    return reaper.reap()


def _by(text: str, user) -> str:
    return f"{text} by {user}." if user else f"{text}."


# --- pause ---------------------------------------------------------------------------------------------


def pause_scheduler(user=None) -> SiteState:
    """No schedule fires and no retry starts until resumed; kept in the database, so a restart stays paused."""
    site = SiteState.get()
    site.paused, site.paused_at, site.paused_by = True, timezone.now(), user
    site.save(update_fields=["paused", "paused_at", "paused_by"])
    return site


def resume_scheduler(user=None, *, catch_up: bool = False) -> SiteState:
    """Resume, and give every retry that came due while paused a schedule for now.

    With `catch_up` ("resume and catch up") the pause counts as downtime: each
    fire time that passed while paused is recorded as missed, and each
    project's missed-run policy runs them late (runs/catchup.py). Without it
    they are simply not run, as the operator meant by pausing.
    """
    site = SiteState.get()
    paused_at = site.paused_at if site.paused else None
    site.paused, site.paused_at, site.paused_by = False, None, None
    site.save(update_fields=["paused", "paused_at", "paused_by"])
    scheduling.sync_all()
    retries.rearm_scheduled()
    if catch_up and paused_at is not None:
        catchup.after_pause(paused_at)
    return site


# --- duplicates -----------------------------------------------------------------------------------------


def _free_name(names: set[str], name: str) -> str:
    candidate, number = f"{name} (copy)", 2
    while candidate in names:
        candidate, number = f"{name} (copy {number})", number + 1
    return candidate


def _copy_children(rows, **change) -> None:
    for row in rows:
        row.pk = row.id = None
        row._state.adding = True
        for field, value in change.items():
            setattr(row, field, value)
        row.save()


def _copy_task(task: Task, project: Project, name: str) -> Task:
    """A disabled copy of the task in `project`, with its parameters, code locations, destinations and notifications."""
    source = Task.objects.get(pk=task.pk)
    children = [list(getattr(source, related).all()) for related in ("parameters", "code_locations", "destinations", "notifications")]
    copy = Task.objects.get(pk=task.pk)
    copy.pk = copy.id = None
    copy._state.adding = True
    copy.project, copy.enabled, copy.name = project, False, name
    with transaction.atomic():
        copy.save()
        for rows in children:
            _copy_children(rows, task=copy)
    return copy


def duplicate_task(task: Task, user) -> Task:
    """A disabled copy beside the task; the admin log says who made it, on the copy and on the original."""
    with transaction.atomic():
        copy = _copy_task(task, task.project, _free_name(set(task.project.tasks.values_list("name", flat=True)), task.name))
        audit.record(user, copy, f"Duplicated from {task.name} (id {task.pk}); disabled.", audit.ADDITION)
        audit.record(user, task, f"Duplicated as {copy.name}.")
    return copy


def duplicate_project(project: Project, user) -> Project:
    """A copy of the project (triggers, parameters) with copies of its tasks, all disabled; logged like `duplicate_task`."""
    source = Project.objects.get(pk=project.pk)
    parameters = list(source.parameters.all())
    tasks = list(source.tasks.all())
    copy = Project.objects.get(pk=project.pk)
    copy.pk = copy.id = None
    copy._state.adding = True
    copy.name = _free_name(set(Project.objects.values_list("name", flat=True)), project.name)
    with transaction.atomic():
        copy.save()
        _copy_children(parameters, project=copy)
        for task in tasks:
            _copy_task(task, copy, task.name)
        audit.record(user, copy, f"Duplicated from {project.name} (id {project.pk}); its tasks are disabled.", audit.ADDITION)
        audit.record(user, project, f"Duplicated as {copy.name}.")
    return copy
