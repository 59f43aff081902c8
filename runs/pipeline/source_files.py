"""File sources (SFTP, FTP, SMB): download every file that matches the task's path.

Files land byte for byte in the run's `in/` folder under their own names
(repeats numbered). Each is first written under a hidden `.part` name and
renamed when complete, so no later stage can pick up half a file.
"""

from __future__ import annotations

import posixpath

from connections.clients import ClientError
from connections.clients.base import Client, outside_base
from connections.clients.remote import expand
from connections.kinds import client_for
from connections.secrets import SecretError
from projects.parameters import ParameterError, substitute
from runs.models import Stage
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.naming import numbered
from runs.pipeline.redelimit import redelimit

STAGE = Stage.SOURCE


def remote_pattern(ctx: RunContext, client: Client) -> str:
    """The task's remote path with parameters and date patterns filled in (wildcards kept)."""
    try:
        pattern = client.remote_path(substitute(ctx.task.source_path, ctx.params, ctx.at).strip())
    except ParameterError as exc:
        raise StageFailure(STAGE, f"The remote path cannot be made: {exc}", permanent=True) from None
    if not pattern:
        raise StageFailure(STAGE, "The task has no remote path to read.", permanent=True)
    # Checked before connecting: a parameter's value may have carried the path out of the base folder.
    if problem := outside_base(ctx.task.source_connection.folder, pattern):
        raise StageFailure(STAGE, problem, permanent=True)
    return pattern


def run_files(ctx: RunContext) -> None:
    conn = ctx.task.source_connection
    client = client_for(conn)
    pattern = remote_pattern(ctx, client)
    inbox = ctx.workdir / "in"
    inbox.mkdir(exist_ok=True)
    try:
        with client:
            matches = expand(client, pattern)
            if not matches:
                _no_match(ctx, pattern)
                return
            ctx.log.info(STAGE, f"{len(matches)} file(s) on {conn} match {pattern}.")
            for remote, name in zip(matches, numbered([posixpath.basename(m) for m in matches]), strict=True):
                ctx.files.append(_download(ctx, client, remote, inbox, name))
    except ClientError as exc:
        raise StageFailure(STAGE, str(exc), permanent=exc.permanent) from None
    except SecretError as exc:
        raise StageFailure(STAGE, f"A secret of {conn} cannot be read: {exc}", permanent=True) from None
    if ctx.task.source_delimiter:
        ctx.files = [redelimit(ctx, local) for local in ctx.files]


def _no_match(ctx: RunContext, pattern: str) -> None:
    conn = ctx.task.source_connection
    if not ctx.task.source_missing_ok:
        # Not permanent: the file may simply not be there yet, and a retry may find it.
        raise StageFailure(STAGE, f"No file matched {pattern} on {conn}.", permanent=False)
    ctx.log.info(STAGE, f"No file matched {pattern} on {conn}; the task says that is fine, so nothing will be delivered.")


def _download(ctx: RunContext, client, remote: str, inbox, name: str) -> LocalFile:
    final = inbox / name
    partial = inbox / f".{name}.part"
    try:
        client.download(remote, partial)
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    ctx.log.info(STAGE, f"Downloaded {remote} ({final.stat().st_size} bytes) as {name}.")
    return LocalFile(path=final, name=name, rows=None)
