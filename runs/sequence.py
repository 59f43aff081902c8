"""Sequence projects: enabled tasks one after another, each only after the previous succeeded.

Order: run rank ascending, tasks without a rank after the ranked ones, ties
by name. A chain starts from a schedule firing or from "run all"; its head
then has trigger "schedule" or "sequence", and every later link is a run with
trigger "sequence" whose `sequence_from` is the run that succeeded before
it. A retry belongs to the chain of the run it retries, so a retry that
succeeds continues the chain. A task run on its own ("run now") is no chain.

After a final failure (no retry follows, or the retry was cancelled) the
tasks still to come are recorded as skipped runs, never silently dropped.
"""

from __future__ import annotations

from datetime import datetime

from projects.models import Project
from runs import state
from runs.models import Run, RunStatus, Stage, Trigger
from runs.pipeline.log import RunLogger
from tasks.models import Task

CHAIN_TRIGGERS = (*Run.FIRE_TIME_TRIGGERS, Trigger.SEQUENCE)


def sort_key(task: Task) -> tuple:
    return (task.rank is None, task.rank or 0, task.name)


def ordered_tasks(project: Project) -> list[Task]:
    return sorted(project.tasks.filter(enabled=True), key=sort_key)


def following(task: Task) -> list[Task]:
    """The enabled tasks after `task` in its project's order."""
    key = sort_key(task)
    return [other for other in ordered_tasks(task.project) if sort_key(other) > key]


def first_attempt(run: Run) -> Run:
    seen = {run.pk}
    while run.retry_of_id and run.retry_of_id not in seen:
        run = run.retry_of
        seen.add(run.pk)
    return run


def in_chain(run: Run) -> bool:
    return run.task.project.sequence and first_attempt(run).trigger in CHAIN_TRIGGERS


def start_chain(project: Project, trigger: str, *, intended_at: datetime, user=None, dedupe: bool = False,
                queue: bool = True) -> Run | None:
    """Start the first task of the sequence, or record it skipped while an earlier pass is still going."""
    tasks = ordered_tasks(project)
    if not tasks:
        return None
    # A hand-started "run all" head is marked "sequence" so that its success carries the chain on.
    head_trigger = trigger if trigger in Run.FIRE_TIME_TRIGGERS else Trigger.SEQUENCE
    # The whole project counts as busy while any of its runs is not over, a retry still to come included.
    busy = Run.objects.filter(task__project=project, status__in=Run.UNFINISHED)
    return state.start_run(tasks[0], head_trigger, intended_at=intended_at, user=user, dedupe=dedupe, busy=busy, queue=queue).run


def continued(run: Run) -> bool:
    return Run.objects.filter(sequence_from=run).exists()


def continue_chain(run: Run, log: RunLogger | None = None) -> Run | None:
    """Follow-up: after a success start the next task; after a final failure skip the rest."""
    if not in_chain(run) or continued(run):
        return None
    log = log or RunLogger(run)
    if run.status == RunStatus.FAILED:
        if state.next_attempt(run) is None:
            skip_rest(run, log)
        return None
    if run.status != RunStatus.SUCCEEDED:
        return None
    rest = following(run.task)
    if not rest:
        log.info(Stage.FINISH, "Sequence complete: this was its last task.")
        return None
    start = state.start_run(rest[0], Trigger.SEQUENCE, intended_at=run.intended_at, user=run.started_by, sequence_from=run)
    after = start.run
    if start.refused:
        log.warning(Stage.FINISH, f"Sequence: {rest[0].name} could not start (run {after.pk}: {after.error})")
        skip_rest(after, log)
    else:
        log.info(Stage.FINISH, f"Sequence: {rest[0].name} follows as run {after.pk}.")
    return after


def skip_rest(run: Run, log: RunLogger | None = None) -> list[Run]:
    """Record every task after this one as skipped, once."""
    if not in_chain(run) or continued(run):
        return []
    rest = following(run.task)
    reason = f"{run.task.name} did not succeed (run {run.pk}, {run.get_status_display().lower()})."
    skipped = [
        state.record_skipped(task, Trigger.SEQUENCE, reason, intended_at=run.intended_at, user=run.started_by, sequence_from=run)
        for task in rest
    ]
    if skipped and log is not None:
        log.warning(Stage.FINISH, f"Sequence stopped: {len(skipped)} later task(s) recorded as skipped.")
    return skipped
