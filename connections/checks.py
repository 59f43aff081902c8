"""“Test connection”: really connect and record the outcome on the connection.

The admin action and `manage.py check_connections` both call `check_connection`.
An SFTP/SSH connection with no pinned host key is not logged in to: its test
only reads the server's key and leaves it waiting for a superuser to pin
(connections/host_keys.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from connections.clients import ClientError
from connections.clients.ssh_transport import UnpinnedHostKey
from connections.host_keys import pending_line
from connections.kinds import client_for
from connections.models import SECRET_FIELDS, Connection
from connections.secrets import SecretError

logger = logging.getLogger(__name__)
MASK = "********"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str  # already prefixed with the connection's name


def _secrets(conn: Connection) -> list[str]:
    values = []
    for name in SECRET_FIELDS:
        try:
            values.append(getattr(conn, name))
        except SecretError:
            continue
    return sorted((v for v in values if v and len(v) >= 3), key=len, reverse=True)


def _masked(conn: Connection, text: str) -> str:
    # Client messages never quote secrets on purpose; this guards against a
    # library that echoes what it was given.
    for secret in _secrets(conn):
        text = text.replace(secret, MASK)
    return text


def _run(conn: Connection) -> tuple[bool, str, str]:
    """Whether the test passed, what it said, and the host key it read from an unpinned server."""
    try:
        return True, client_for(conn).test(), ""
    except UnpinnedHostKey as exc:
        return False, str(exc), pending_line(exc)
    except ClientError as exc:
        return False, str(exc), ""
    except SecretError as exc:
        return False, f"A secret of this connection cannot be decrypted: {exc}", ""
    except Exception as exc:  # noqa: BLE001 - a test must report, never crash the page or the command
        logger.exception("Testing connection %s failed unexpectedly", conn.pk)
        return False, f"Unexpected error: {type(exc).__name__}: {exc}", ""


def check_connection(conn: Connection) -> CheckResult:
    """Test `conn` and store when, whether and what on it.

    A key read from an unpinned server replaces any key waiting from an
    earlier test; every other outcome leaves none waiting, so only the
    fingerprint of the latest test can be pinned.
    """
    ok, message, pending = _run(conn)
    update = dict(tested_at=timezone.now(), test_ok=ok, test_message=_masked(conn, message), pending_host_key=pending)
    Connection.objects.filter(pk=conn.pk).update(**update)
    for field, value in update.items():
        setattr(conn, field, value)
    return CheckResult(ok, f"{conn}: {conn.test_message}")
