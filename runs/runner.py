"""One run from claim to finish: the stages in order, every outcome recorded, then the follow-ups.

The runner sits above the stages (runs/pipeline/) and is called by the
entry points only (runs/jobs.py, and `run_task --wait` / `run_project
--wait`): it claims the run (runs/state.py), runs the stages, saves the
outcome, and only then calls the follow-ups in their order
(runs/followups.py), so a crash in a follow-up never leaves the run
unrecorded.

One deadline per run: the task's timeout, counted from the claim. Every
stage obeys it (connections/clients/deadline.py): a query is cancelled, a
transfer's sockets are shut, a script's process group is killed, and no
stage starts once it has passed. The run then fails "stopped by the task
timeout of N minutes in the <stage> stage".
"""

from __future__ import annotations

import inspect
import logging
import shutil
from collections.abc import Callable

from django.db.models import Prefetch
from django.utils import timezone

from connections.clients import deadline
from connections.secrets import SecretError
from projects.parameters import ParameterError
from runs import followups
from runs.models import Run, RunStatus, Stage
from runs.pipeline import delivery, guard, output, processing, redelivery, release, source
from runs.pipeline.context import RunContext, intended_time, load_parameters, make_workdir, task_deadline
from runs.pipeline.errors import RunHeld, StageFailure
from runs.pipeline.log import RunLogger
from runs.state import claim, finish
from runs.ticker import Heartbeat
from tasks.masking import task_masker
from tasks.models import Task

logger = logging.getLogger(__name__)

# The stages after the parameters, in order (SPEC §4); each takes the context and raises StageFailure.
# The row guard judges the rows before any file is made; a run it holds stops after its files are stored.
STAGES = (source.run, processing.run, guard.check, output.run, guard.hold, delivery.run)
# A retry after a delivery failure only sends the stored files that did not arrive.
REDELIVERY_STAGES = (redelivery.run,)
# A held run that a person released only delivers its stored files.
RELEASE_STAGES = (release.run,)


def run_deadline(run: Run) -> deadline.Deadline:
    """The task's timeout, counted from the claim."""
    return task_deadline(run.task, (timezone.now() - run.started_at).total_seconds())


def _load_task(run: Run) -> Task:
    return (
        Task.objects.select_related("project", "source_connection__organization", "gpg_key")
        .prefetch_related("parameters", "project__parameters", Prefetch("destinations"), "code_locations__connection")
        .get(pk=run.task_id)
    )


def _context(run: Run, log: RunLogger, limit: deadline.Deadline) -> RunContext:
    task = _load_task(run)
    at = intended_time(run, task)
    try:
        params = load_parameters(task, at)
        log.masker = task_masker(task, params)
    except ParameterError as exc:
        raise StageFailure(Stage.PARAMETERS, f"The parameters cannot be read: {exc}", permanent=True) from None
    except SecretError as exc:
        # Never run with a secret that cannot be read (SPEC §7); the message names it, not its value.
        raise StageFailure(Stage.PARAMETERS, str(exc), permanent=True) from None
    ctx = RunContext(run=run, task=task, log=log, workdir=make_workdir(run), at=at, params=params, deadline=limit)
    log.info(Stage.PARAMETERS, f"Intended time {at:%Y-%m-%d %H:%M %Z}; {len(params)} parameter(s).")
    return ctx


def _stages(ctx: RunContext) -> None:
    if redelivery.applies(ctx.run):
        stages = REDELIVERY_STAGES
    elif release.applies(ctx.run):
        stages = RELEASE_STAGES
    else:
        stages = STAGES
    for stage in stages:
        if ctx.deadline.passed():
            raise StageFailure(_stage_of(stage), f"Stopped by {ctx.deadline.limit} before the {_stage_of(stage)} stage.")
        try:
            stage(ctx)
        except StageFailure as failure:
            raise _named_timeout(failure, ctx.deadline) from None


def _stage_of(step) -> str:
    # Every stage's module names its stage (STAGE).
    return inspect.getmodule(step).STAGE


def _named_timeout(failure: StageFailure, limit: deadline.Deadline) -> StageFailure:
    """A failure once the deadline has passed says so, and names its stage: the timeout is why it failed."""
    if not limit.passed():
        return failure
    message, ending = failure.message, f"stopped by {limit.limit}."
    if message.endswith(ending):
        message = f"{message[:-1]} in the {failure.stage} stage."
    else:
        message = f"Stopped by {limit.limit} in the {failure.stage} stage: {message[:1].lower()}{message[1:]}"
    return StageFailure(failure.stage, message, permanent=False)


def execute(run_id: int, *, echo: Callable[[str], None] | None = None) -> Run | None:
    """Run a queued run to its end. Returns the finished run, or None if it was not ours to run."""
    run = claim(run_id)
    if run is None:
        return None
    log = RunLogger(run, echo)
    log.info(Stage.CLAIM, f"Attempt {run.attempt} of {run.task} started ({run.get_trigger_display().lower()} trigger) on {run.worker}.")
    ctx = None
    beat = Heartbeat.of_run(run.pk)  # lets the reaper tell a busy run from a dead worker
    limit = run_deadline(run)
    try:
        with deadline.applies(limit):
            ctx = _context(run, log, limit)
            _stages(ctx)
    except StageFailure as failure:
        _fail(run, log, failure)
    except RunHeld:
        _hold(run, log, ctx)
    except Exception as exc:  # noqa: BLE001 - a bug must still end the run, never leave it "running"
        logger.exception("Run %s failed unexpectedly", run.pk)
        _fail(run, log, StageFailure(Stage.FINISH, f"Internal error: {type(exc).__name__}: {exc}"))
    else:
        _succeed(run, log, ctx)
    finally:
        beat.stop()
        if ctx is not None:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    followups.after_run(run, log)
    return run


def _succeed(run: Run, log: RunLogger, ctx: RunContext) -> None:
    finish(run, RunStatus.SUCCEEDED, rows=ctx.rows)
    log.info(Stage.FINISH, f"Succeeded in {(run.finished_at - run.started_at).total_seconds():.1f} s.")


def _hold(run: Run, log: RunLogger, ctx: RunContext) -> None:
    finish(run, RunStatus.HELD, rows=ctx.rows)
    log.warning(Stage.FINISH, f"Held: {len(ctx.stored)} file(s) wait in Courier's file storage; nothing was delivered. "
                              "Release or discard them on Task Details.")


def _fail(run: Run, log: RunLogger, failure: StageFailure) -> None:
    message = log.mask(failure.message)
    log.error(failure.stage, message)
    finish(run, RunStatus.FAILED, error=message, error_stage=failure.stage, permanent=failure.permanent)
    kind = "permanent" if failure.permanent else "transient"
    log.info(Stage.FINISH, f"Failed at the {failure.stage} stage ({kind} failure).")
