"""What the admin, the pages, the commands and the worker call to start or stop runs.

Starting a run always goes through `start_run`, which holds the rule "at
most one active run per task": a trigger that finds the task busy records a
skipped run instead (SPEC §4).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from projects import scheduling
from projects.models import Project
from runs.models import ACTIVE, CLAIMABLE, Run, RunLog, RunStatus, SiteState, Stage, Trigger
from tasks.models import Task


class ServiceError(Exception):
    """An operation that was refused; the message says why and is fit to show."""


# --- starting runs --------------------------------------------------------------------------------


def create_run(task: Task, trigger: str, *, user=None, intended_at: datetime | None = None, **extra) -> Run:
    now = timezone.now()
    return Run.objects.create(
        task=task, trigger=trigger, started_by=user, intended_at=intended_at or now, due_at=now,
        status=RunStatus.QUEUED, **extra,
    )


def enqueue(run: Run) -> None:
    """Hand the run to a worker once the row is committed, so the worker can see it."""
    transaction.on_commit(
        lambda: async_task("runs.jobs.execute_run", run.pk, task_name=f"run-{run.pk}", group="runs")
    )


def record_skipped(task: Task, trigger: str, reason: str, *, intended_at: datetime, user=None, **extra) -> Run:
    """A run that never started, kept so that nothing is silently ignored."""
    now = timezone.now()
    run = Run.objects.create(
        task=task, trigger=trigger, started_by=user, intended_at=intended_at, due_at=now, finished_at=now,
        status=RunStatus.SKIPPED, error=reason, **extra,
    )
    RunLog.objects.create(run=run, stage=Stage.CLAIM, level="warning", message=f"Skipped: {reason}")
    return run


def start_run(
    task: Task, trigger: str, *, intended_at: datetime | None = None, user=None, sequence_from: Run | None = None,
    dedupe: bool = False, busy: QuerySet | None = None, queue: bool = True,
) -> Run | None:
    """Queue a run of `task`, or record it skipped when a previous run is still active.

    `dedupe` makes a second delivery of the same firing a no-op (None); `busy`
    replaces "the task's active runs" (a sequence looks at the whole project);
    `queue=False` leaves the run for the caller to execute in its own process.
    The task row is locked so two triggers of one task cannot both see it idle.
    """
    intended_at = intended_at or timezone.now()
    with transaction.atomic():
        Task.objects.select_for_update().filter(pk=task.pk).first()
        if dedupe and Run.objects.filter(task=task, trigger=trigger, intended_at=intended_at).exists():
            return None
        busy = Run.objects.filter(task=task, status__in=ACTIVE) if busy is None else busy
        active = busy.select_related("task__project").order_by("id").first()
        if active is not None:
            reason = f"previous run still active (run {active.pk} of {active.task}, {active.get_status_display().lower()})."
            return record_skipped(task, trigger, reason, intended_at=intended_at, user=user, sequence_from=sequence_from)
        run = create_run(task, trigger, user=user, intended_at=intended_at, sequence_from=sequence_from)
        if queue:
            enqueue(run)
    return run


def run_now(task: Task, user=None, trigger: str = Trigger.MANUAL) -> Run:
    return start_run(task, trigger, user=user)


def start_project(project: Project, trigger: str, *, intended_at: datetime | None = None, user=None,
                  dedupe: bool = False, queue: bool = True) -> list[Run]:
    """Start a project's enabled tasks: all at once, or the first of its sequence."""
    from runs import sequence

    intended_at = intended_at or timezone.now()
    if project.sequence:
        run = sequence.start_chain(project, trigger, intended_at=intended_at, user=user, dedupe=dedupe, queue=queue)
        return [run] if run else []
    runs = [
        start_run(task, trigger, intended_at=intended_at, user=user, dedupe=dedupe, queue=queue)
        for task in project.tasks.filter(enabled=True).order_by("name")
    ]
    return [run for run in runs if run is not None]


def run_project(project: Project, user=None, trigger: str = Trigger.MANUAL, queue: bool = True) -> list[Run]:
    """“Run all”: every enabled task now, honouring the sequence."""
    return start_project(project, trigger, user=user, queue=queue)


def set_all_enabled(project: Project, enabled: bool) -> int:
    return project.tasks.exclude(enabled=enabled).update(enabled=enabled)


def enable_all(project: Project) -> int:
    return set_all_enabled(project, True)


def disable_all(project: Project) -> int:
    return set_all_enabled(project, False)


def cancel(run: Run) -> bool:
    """Cancel a run that has not started; False if it is already running or finished."""
    changed = Run.objects.filter(pk=run.pk, status__in=CLAIMABLE).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )
    if changed and run.schedule_id:
        Schedule.objects.filter(pk=run.schedule_id).delete()
    run.refresh_from_db()
    return bool(changed)


# --- retries and schedules ------------------------------------------------------------------------------


def cancel_retry(task: Task, user=None) -> Run:
    """Cancel the task's pending retry; refused while the task runs (that run may plan a new one)."""
    from runs import retries

    running = task.runs.filter(status=RunStatus.RUNNING).first()
    if running is not None:
        raise ServiceError(f"{task} is running (run {running.pk}); cancel the retry after that run has ended.")
    cancelled = retries.cancel_pending(task.runs.all(), reason=_by("Retry cancelled", user))
    if not cancelled:
        raise ServiceError(f"{task} has no pending retry.")
    return cancelled[-1]


def reschedule_project(project: Project, user=None) -> list[Run]:
    """Rebuild the project's schedules from its triggers and cancel its pending retries."""
    from runs import retries

    scheduling.sync_project(project)
    return retries.cancel_pending(Run.objects.filter(task__project=project), reason=_by("Retry cancelled by a reschedule", user))


def reschedule_task(task: Task, user=None) -> list[Run]:
    """Rebuild the schedules of the task's project and cancel the task's pending retries."""
    from runs import retries

    scheduling.sync_project(task.project)
    return retries.cancel_pending(task.runs.all(), reason=_by("Retry cancelled by a reschedule", user))


def reschedule_all(user=None) -> int:
    """Rebuild every schedule from the database: each project's, the reaper's, and those of pending retries.

    Unlike the reschedule of one project, this recovery tool keeps pending
    retries (it gives any that lost its schedule a new one). Returns the
    number of armed trigger schedules.
    """
    from runs import retries

    armed = scheduling.sync_all()
    retries.rearm_pending()
    return armed


def orphaned_schedules() -> list[Schedule]:
    return scheduling.orphans()


def delete_orphans() -> int:
    return scheduling.delete_orphans()


def reap_runs() -> list[Run]:
    from runs import reaper

    return reaper.reap()


def _by(text: str, user) -> str:
    return f"{text} by {user}." if user else f"{text}."


# --- pause ---------------------------------------------------------------------------------------------


def is_paused() -> bool:
    return SiteState.get().paused


def pause_scheduler(user=None) -> SiteState:
    """No schedule fires and no retry starts until resumed; kept in the database, so a restart stays paused."""
    site = SiteState.get()
    site.paused, site.paused_at, site.paused_by = True, timezone.now(), user
    site.save(update_fields=["paused", "paused_at", "paused_by"])
    return site


def resume_scheduler(user=None) -> SiteState:
    """Resume, and give every retry that came due while paused a schedule for now."""
    from runs import retries

    site = SiteState.get()
    site.paused, site.paused_at, site.paused_by = False, None, None
    site.save(update_fields=["paused", "paused_at", "paused_by"])
    scheduling.sync_all()
    retries.rearm_pending()
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


def duplicate_task(task: Task, user=None, *, project: Project | None = None, name: str | None = None) -> Task:
    """A disabled copy with its parameters, code locations, destinations and notifications."""
    project = project or task.project
    source = Task.objects.get(pk=task.pk)
    children = [list(getattr(source, related).all()) for related in ("parameters", "code_locations", "destinations", "notifications")]
    copy = Task.objects.get(pk=task.pk)
    copy.pk = copy.id = None
    copy._state.adding = True
    copy.project, copy.enabled = project, False
    copy.name = name or _free_name(set(project.tasks.values_list("name", flat=True)), task.name)
    with transaction.atomic():
        copy.save()
        for rows in children:
            _copy_children(rows, task=copy)
    return copy


duplicate = duplicate_task


def duplicate_project(project: Project, user=None) -> Project:
    """A copy of the project (triggers, parameters) with copies of its tasks, all disabled."""
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
            duplicate_task(task, project=copy, name=task.name)
    return copy
