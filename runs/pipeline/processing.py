"""The processing stage: run the task's Python script on the source's files (SPEC §3.7).

`python <script> <input files…>` in the run's folder, in a cached virtual
environment holding the script's requirements, never through a shell. Every
output line goes to the run log as it comes; the exit status decides. If the
last line printed is a list of paths, those files flow on instead of the input.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

from projects.parameters import ParameterError
from runs import sandbox, venvs
from runs.models import SiteState, Stage
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.script_env import script_environment, worker_environment
from runs.procs import Outcome, run_streaming
from runs.requirements import FROM_IMPORTS, Requirements, RequirementsError, resolve
from tasks.code import CodeError, code_location
from tasks.models import CodeRole, SourceKind
from tasks.packages import Script, fetch_script

STAGE = Stage.PROCESSING
# Beyond this many lines a chatty script keeps running, but its output is no longer logged;
# longer lines are shortened in the log (the result line is still read whole).
MAX_LOGGED_LINES = 10_000
MAX_LOGGED_CHARS = 10_000
SCRIPT_FOLDER = "script"


def needs_script(ctx: RunContext) -> bool:
    return code_location(ctx.task, CodeRole.PROCESSING) is not None or ctx.task.source_kind == SourceKind.PYTHON


def run(ctx: RunContext) -> None:
    if not needs_script(ctx):
        return
    if not SiteState.get().processing_enabled:
        raise StageFailure(
            STAGE, "Processing scripts are switched off for this site, and this task needs one; "
            "nothing was delivered. An administrator can switch them back on.", permanent=True,
        )
    remaining = ctx.deadline.left()
    if remaining <= 0:
        raise StageFailure(STAGE, "No time was left for the processing script to start.")
    deadline = time.monotonic() + remaining
    bwrap = _sandbox(ctx)
    script = _fetch(ctx, deadline)
    requirements = _requirements(ctx, script)
    environment = _environment(ctx, requirements, deadline)
    outcome = _execute(ctx, script, environment, deadline, bwrap)
    _check(ctx, outcome)
    _take_result(ctx, outcome.last_stdout)


def _sandbox(ctx: RunContext) -> str | None:
    """bwrap's path; None when an administrator switched the sandbox off. Checked before anything is fetched or built."""
    if sandbox.required():
        try:
            return sandbox.locate()
        except sandbox.SandboxError as exc:
            raise StageFailure(STAGE, str(exc), permanent=True) from None
    if not ctx.task.script_network:
        raise StageFailure(
            STAGE, "This task's script may not use the network, which only the sandbox can enforce, and the sandbox is "
            "switched off (COURIER_SCRIPT_SANDBOX=off); the script was not run.", permanent=True,
        )
    ctx.log.warning(STAGE, "The script sandbox is switched off (COURIER_SCRIPT_SANDBOX=off): the script can read everything the worker can.")
    return None


def _fetch(ctx: RunContext, deadline: float) -> Script:
    if code_location(ctx.task, CodeRole.PROCESSING) is None:
        raise StageFailure(STAGE, "A Python-script-only task needs a processing script; this one has none.", permanent=True)
    try:
        script = fetch_script(
            ctx.task, ctx.workdir / SCRIPT_FOLDER, warn=lambda msg: ctx.log.warning(STAGE, msg),
            seconds=deadline - time.monotonic(),
        )
    except CodeError as exc:
        raise StageFailure(STAGE, str(exc), permanent=exc.permanent) from None
    if script.package:
        ctx.log.info(STAGE, f"Fetched the script package; entry file {script.entry.relative_to(script.root)}.")
    return script


def _requirements(ctx: RunContext, script: Script) -> Requirements:
    try:
        found = resolve(script.root, script.entry, ctx.task.processing_requirements, package=script.package)
    except RequirementsError as exc:
        raise StageFailure(STAGE, str(exc), permanent=True) from None
    listed = ", ".join(found.lines) if found else "none"
    ctx.log.info(STAGE, f"Requirements (from {found.origin}): {listed}.")
    return found


def _environment(ctx: RunContext, requirements: Requirements, deadline: float) -> venvs.Environment:
    try:
        return venvs.ensure(requirements.lines, deadline=deadline, say=lambda msg: ctx.log.info(STAGE, msg), env=worker_environment())
    except venvs.VenvError as exc:
        hint = ""
        if requirements.origin == FROM_IMPORTS:
            hint = " The list was read from the script's imports; list the right distributions in the task's requirements field instead."
        raise StageFailure(STAGE, exc.message + hint, permanent=exc.permanent) from None


def _execute(ctx: RunContext, script: Script, environment: venvs.Environment, deadline: float, bwrap: str | None) -> Outcome:
    try:
        env = script_environment(ctx, environment.bin)
    except ParameterError as exc:
        raise StageFailure(STAGE, f"The parameters cannot be passed to the script: {exc}", permanent=True) from None
    args = [str(f.path) for f in ctx.files]
    argv = [str(environment.python), str(script.entry), *args]
    if bwrap is not None:
        argv = sandbox.command(bwrap, argv, workdir=ctx.workdir, environment=environment.path, network=ctx.task.script_network)
    shown = f"python {script.entry.relative_to(script.root)}" + "".join(f" {Path(a).name}" for a in args)
    ctx.log.info(STAGE, f"Running {shown}.")
    logged = 0

    def on_line(stream: str, text: str) -> None:
        nonlocal logged
        logged += 1
        if logged <= MAX_LOGGED_LINES:
            text = ctx.log.mask(text)  # before shortening, so a cut cannot leave part of a secret
            if len(text) > MAX_LOGGED_CHARS:
                text = f"{text[:MAX_LOGGED_CHARS]} … ({len(text) - MAX_LOGGED_CHARS} more characters)"
            (ctx.log.info if stream == "stdout" else ctx.log.warning)(STAGE, text)
        elif logged == MAX_LOGGED_LINES + 1:
            ctx.log.warning(STAGE, f"The script printed more than {MAX_LOGGED_LINES} lines; the rest are not logged.")

    try:
        return run_streaming(argv, cwd=ctx.workdir, env=env, deadline=deadline, on_line=on_line)
    except OSError as exc:
        raise StageFailure(STAGE, f"The processing script could not be started with {environment.python}: {exc.strerror or exc}.") from None


def _check(ctx: RunContext, outcome: Outcome) -> None:
    if outcome.timed_out:
        raise StageFailure(STAGE, "The processing script was stopped at the deadline: it and every process it started were ended.")
    if outcome.returncode != 0:
        how = f"was killed by signal {-outcome.returncode}" if outcome.returncode < 0 else f"exited with status {outcome.returncode}"
        raise StageFailure(STAGE, f"The processing script {how}; its output is in the log above.")
    ctx.log.info(STAGE, "The processing script finished successfully.")


# ----------------------------------------------------------------------------
# The files the script hands back


def returned_paths(line: str) -> list[str] | None:
    """The list of paths on the script's last output line, or None if the line is not one."""
    text = line.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _take_result(ctx: RunContext, last_line: str) -> None:
    paths = returned_paths(last_line)
    if paths is None:
        if ctx.files:
            ctx.log.info(STAGE, "The script returned no list of files; its input files flow on unchanged.")
        else:
            ctx.log.info(STAGE, "The script returned no list of files; there is nothing to deliver.")
        return
    ctx.files = [_returned_file(ctx, raw) for raw in paths]
    names = [f.name for f in ctx.files]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise StageFailure(STAGE, f"The script returned two files named {doubled[0]}; delivered names must differ.", permanent=True)
    ctx.log.info(STAGE, f"The script returned {len(names)} file(s): {', '.join(names) or 'none'}.")


def _returned_file(ctx: RunContext, raw: str) -> LocalFile:
    if not raw.strip():
        raise StageFailure(STAGE, "The script returned an empty path in its list of files.", permanent=True)
    workdir = ctx.workdir.resolve()
    # Relative paths are relative to the script's working directory: the run folder.
    path = (workdir / raw).resolve()
    if not path.is_relative_to(workdir):
        raise StageFailure(STAGE, f"The script returned the path “{raw}”, which lies outside the run's folder {workdir}.", permanent=True)
    if not path.exists():
        raise StageFailure(STAGE, f"The script returned the path “{raw}”, which does not exist.", permanent=True)
    if not path.is_file():
        raise StageFailure(STAGE, f"The script returned the path “{raw}”, which is not a file.", permanent=True)
    return LocalFile(path=path, name=path.name, rows=None)
