"""Loading a task's query, command or script text from its code location.

Remote locations (SFTP, FTP, SMB, GitLab, web URL) are fetched on every run.
With the location's cache switched on, each successful fetch is kept on the
CodeLocation *before* parameters are inserted; when a later fetch fails, the
kept text is used and `warn` says so. Without a usable copy the failure
stands, with the fetch's own message.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone

from connections import kinds
from connections.clients import ClientError, http
from connections.clients.base import Client
from connections.secrets import SecretError
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Task

logger = logging.getLogger(__name__)

# Code named by a path on a file server (the others are named by a URL).
FILE_LOCATIONS = kinds.code_kinds("path")


class CodeError(Exception):
    """The code cannot be had; `permanent` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


def code_location(task: Task, role: str) -> CodeLocation | None:
    # Prefetched by the runner: filter in Python to avoid a query per call.
    return next((c for c in task.code_locations.all() if c.role == role), None)


def describe(code: CodeLocation) -> str:
    """Where the code comes from, for messages (never with a secret)."""
    if code.location in FILE_LOCATIONS:
        return f"{code.path} on {code.connection}"
    return http.shown(code.url) + (f" ({code.path})" if code.path else "")


def load_text(task: Task, role: str = CodeRole.SOURCE, warn: Callable[[str], None] | None = None) -> str:
    """The code's text before parameters are inserted. `warn(message)` reports a fallback to the cache."""
    code = code_location(task, role)
    if code is None:
        what = "query or command" if role == CodeRole.SOURCE else "processing script"
        raise CodeError(f"The task has no {what}.")
    if code.location == CodeLocationKind.INLINE:
        return code.text
    try:
        text = fetch_text(code)
    except CodeError as exc:
        return _cached_text(code, exc, warn)
    if code.cache:
        _keep(code, text)
    return text


def fetch_text(code: CodeLocation) -> str:
    """Fetch a remote location's text now (no cache involved)."""
    data = _fetch_bytes(code)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodeError(
            f"The code at {describe(code)} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}).",
            permanent=True,
        ) from None


def code_client(code: CodeLocation) -> Client:
    """The client that reads `code` (its connection's, or a plain one where the kind needs no connection)."""
    kind, conn = kinds.KINDS.get(code.location), code.connection
    if kind is None or kind.code is None:
        raise CodeError(f"Unknown code location “{code.location}”.")
    label = kind.code.label
    if conn is None and not kind.code.connection_optional:
        raise CodeError(f"A {label} code location needs a {label} connection.")
    if conn is not None and conn.kind != kind.key:
        raise CodeError(f"“{conn}” is a {conn.get_kind_display()} connection; a {label} code location needs a {label} connection.")
    if not getattr(code, kind.code.address):
        raise CodeError(f"The {label} code location has no {code._meta.get_field(kind.code.address).verbose_name}.")
    return kind.client_class(conn)


def _fetch_bytes(code: CodeLocation) -> bytes:
    try:
        client = code_client(code)
        if code.location not in FILE_LOCATIONS:
            return client.fetch(code.url, code.path)
        with tempfile.TemporaryDirectory(prefix="courier-code-") as folder, client:
            local = Path(folder) / "code"
            client.download(code.path, local)
            return local.read_bytes()
    except ClientError as exc:
        raise CodeError(str(exc), permanent=exc.permanent) from None
    except SecretError as exc:
        raise CodeError(f"A secret of {code.connection} cannot be read: {exc}") from None


def _keep(code: CodeLocation, text: str) -> None:
    now = timezone.now()
    CodeLocation.objects.filter(pk=code.pk).update(cached_text=text, cached_at=now)
    code.cached_text, code.cached_at = text, now


def _cached_text(code: CodeLocation, error: CodeError, warn: Callable[[str], None] | None) -> str:
    if not code.cache:
        raise error
    if code.cached_at is None:
        raise CodeError(f"{error} There is no cached copy to fall back on yet.", permanent=error.permanent)
    message = (
        f"Could not fetch the code from {describe(code)}: {error} "
        f"Using the cached copy from {timezone.localtime(code.cached_at):%Y-%m-%d %H:%M %Z}."
    )
    (warn or logger.warning)(message)
    return code.cached_text
