"""SSH command source: run the task's command on the remote host.

Its stdout and stderr lines go to the run log (up to a cap, so a chatty
command cannot flood it); a non-zero exit status fails the run. With "keep
stdout as the output file", stdout is also written byte for byte to a file
named like any output file, and is then not copied into the log. The command
runs as written: parameters and date patterns are not put into it, because a
command's own `%` (date +%Y, printf %d) must reach the shell unchanged.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from connections.clients import ClientError, deadline
from connections.kinds import client_for
from connections.secrets import SecretError
from runs.models import Stage
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.naming import output_file_name

STAGE = Stage.SOURCE
MAX_LOGGED_LINES = 1000


class _LogLines:
    def __init__(self, ctx: RunContext, stream: str) -> None:
        self.ctx, self.stream, self.count = ctx, stream, 0

    def __call__(self, line: str) -> None:
        self.count += 1
        if self.count <= MAX_LOGGED_LINES:
            self.ctx.log.info(STAGE, f"{self.stream}: {line}")
        elif self.count == MAX_LOGGED_LINES + 1:
            self.ctx.log.info(STAGE, f"{self.stream}: more than {MAX_LOGGED_LINES} lines; the rest is not logged.")


def _ignore(line: str) -> None:
    pass


def _discard(partial: Path | None) -> None:
    if partial is not None:
        partial.unlink(missing_ok=True)


def _run(ctx: RunContext, command: str, partial: Path | None) -> int:
    with open(partial, "wb") if partial else contextlib.nullcontext() as stdout_file:
        return client_for(ctx.task.source_connection).run_command(
            command,
            on_stdout=_ignore if partial else _LogLines(ctx, "stdout"),
            on_stderr=_LogLines(ctx, "stderr"),
            stdout_file=stdout_file,
            timeout=deadline.limit(ctx.task.timeout_minutes * 60),
        )


def run_ssh(ctx: RunContext, command: str) -> None:
    task, conn = ctx.task, ctx.task.source_connection
    name = output_file_name(task, ctx.params, ctx.at) if task.source_stdout_as_file else ""
    out = ctx.workdir / "out"
    out.mkdir(exist_ok=True)
    partial = out / f".{name}.part" if name else None
    ctx.log.info(STAGE, f"Running the command on {conn}" + (f"; stdout becomes {name}." if name else "."))
    try:
        status = _run(ctx, command, partial)
    except ClientError as exc:
        _discard(partial)
        raise StageFailure(STAGE, str(exc), permanent=exc.permanent) from None
    except SecretError as exc:
        _discard(partial)
        raise StageFailure(STAGE, f"A secret of {conn} cannot be read: {exc}", permanent=True) from None
    if status != 0:
        _discard(partial)
        shown = "no exit status (killed by a signal?)" if status == -1 else f"exit status {status}"
        raise StageFailure(STAGE, f"The command on {conn} ended with {shown}.", permanent=False)
    ctx.log.info(STAGE, "The command ended with exit status 0.")
    if partial is not None:
        target = partial.rename(out / name)
        ctx.log.info(STAGE, f"Kept stdout as {name} ({target.stat().st_size} bytes).")
        ctx.files.append(LocalFile(path=target, name=name, rows=None))
