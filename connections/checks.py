"""“Test connection”: really connect, record the outcome on the connection, pin SSH host keys.

The admin action and `manage.py check_connections` both call `check_connection`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from connections.clients import ClientError, client_for
from connections.clients.ssh_transport import parse_host_key
from connections.masking import masker_for
from connections.models import Connection
from connections.secrets import SecretError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str  # already prefixed with the connection's name


def host_key_fingerprint(line: str) -> str:
    """“ssh-ed25519 SHA256:…” for a pinned key line, as `ssh-keygen -l` shows it; blank when none."""
    if not line.strip():
        return ""
    try:
        key = parse_host_key(line, "this connection")
    except ClientError as exc:
        return str(exc)
    return f"{key.get_name()} {key.fingerprint}"


def _run(conn: Connection) -> tuple[bool, str]:
    try:
        masker = masker_for([conn])
    except SecretError as exc:
        # Nothing is tried: the client would need the very secret that cannot be read.
        return False, f"A secret of this connection cannot be decrypted: {exc}"
    # Client messages never quote secrets on purpose; the masker guards
    # against a library that echoes what it was given.
    try:
        return True, masker.mask(client_for(conn.kind).test(conn))
    except ClientError as exc:
        return False, masker.mask(str(exc))
    except Exception as exc:  # noqa: BLE001 - a test must report, never crash the page or the command
        logger.exception("Testing connection %s failed unexpectedly", conn.pk)
        return False, masker.mask(f"Unexpected error: {type(exc).__name__}: {exc}")


def check_connection(conn: Connection) -> CheckResult:
    """Test `conn` and store when, whether and what on it.

    SFTP and SSH tests accept an unknown server key only while none is
    pinned; the first success pins it. A pinned key that no longer matches
    fails the test (the client refuses the connection).
    """
    pinned_before = conn.host_key
    ok, message = _run(conn)
    update = {}
    if ok and conn.host_key and not pinned_before:
        update["host_key"] = conn.host_key
        message += f" Pinned the server's host key {conn.host_key.split()[0]}."
    elif conn.host_key != pinned_before:
        conn.host_key = pinned_before  # a failed test pins nothing
    update.update(tested_at=timezone.now(), test_ok=ok, test_message=message)
    Connection.objects.filter(pk=conn.pk).update(**update)
    for field, value in update.items():
        setattr(conn, field, value)
    return CheckResult(ok, f"{conn}: {message}")
