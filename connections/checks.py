"""“Test connection”: really connect and record the outcome on the connection.

The “Test connection” button on a connection's admin page, the admin's bulk
action and `manage.py check_connections` all call `check_connection`.
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
from connections.masking import masker_for
from connections.models import Connection
from connections.secrets import SecretError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str  # already prefixed with the connection's name


def _run(conn: Connection) -> tuple[bool, str, str]:
    """Whether the test passed, what it said (masked), and the host key it read from an unpinned server."""
    try:
        masker = masker_for([conn])
    except SecretError as exc:
        # Nothing is tried: the client would need the very secret that cannot be read.
        return False, f"A secret of this connection cannot be decrypted: {exc}", ""
    # Client messages never quote secrets on purpose; the masker guards
    # against a library that echoes what it was given.
    try:
        return True, masker.mask(client_for(conn).test()), ""
    except UnpinnedHostKey as exc:
        return False, masker.mask(str(exc)), pending_line(exc)
    except ClientError as exc:
        return False, masker.mask(str(exc)), ""
    except Exception as exc:  # noqa: BLE001 - a test must report, never crash the page or the command
        logger.exception("Testing connection %s failed unexpectedly", conn.pk)
        return False, masker.mask(f"Unexpected error: {type(exc).__name__}: {exc}"), ""


def check_connection(conn: Connection) -> CheckResult:
    """Test `conn` and store when, whether and what on it.

    A key read from an unpinned server replaces any key waiting from an
    earlier test; every other outcome leaves none waiting, so only the
    fingerprint of the latest test can be pinned.
    """
    ok, message, pending = _run(conn)
    update = dict(tested_at=timezone.now(), test_ok=ok, test_message=message, pending_host_key=pending)
    Connection.objects.filter(pk=conn.pk).update(**update)
    for field, value in update.items():
        setattr(conn, field, value)
    return CheckResult(ok, f"{conn}: {conn.test_message}")
