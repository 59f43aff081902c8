"""Pinning an SFTP/SSH server's host key: only the key a superuser was shown, only for the address it came from.

A connection test of a connection with no pinned key reads the server's key
without logging in and leaves it on the connection as `pending_host_key`
(“[host]:port ssh-ed25519 AAAA…”). Pinning takes that stored key, never a
fresh one, and only when the fingerprint the superuser was shown is its
fingerprint: a later test that read another key replaces it, and the old
fingerprint then pins nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from connections.clients import ClientError
from connections.clients.ssh_transport import UnpinnedHostKey, describe_key, host_address, host_key_line, parse_host_key
from connections.models import Connection

# A fingerprint typed or posted back is at most “ecdsa-sha2-nistp521 SHA256:” and 43 characters.
MAX_FINGERPRINT = 120


class PinRefused(Exception):
    """Pinning did not happen; the message says why and what to do."""


@dataclass(frozen=True)
class PendingKey:
    address: str  # where the key was read: “host” or “[host]:port”
    line: str  # “ssh-ed25519 AAAA…”, what host_key will hold


def pending_line(unpinned: UnpinnedHostKey) -> str:
    """What a test stores on the connection for the key it read."""
    return f"{unpinned.address} {host_key_line(unpinned.key)}"


def pending_key(conn: Connection) -> PendingKey | None:
    """The key the last test read, if it was read from the connection's current address."""
    parts = conn.pending_host_key.split()
    if len(parts) != 3 or parts[0] != host_address(conn):
        return None
    return PendingKey(parts[0], f"{parts[1]} {parts[2]}")


def host_key_fingerprint(line: str) -> str:
    """“ssh-ed25519 SHA256:…” for a key line, as `ssh-keygen -l` shows it; blank for none."""
    if not line.strip():
        return ""
    try:
        return describe_key(parse_host_key(line, "this connection"))
    except ClientError as exc:
        return str(exc)


def pending_fingerprint(conn: Connection) -> str:
    """The fingerprint a superuser may pin now; blank when a key is pinned or none is waiting."""
    pending = pending_key(conn)
    return "" if conn.host_key or pending is None else host_key_fingerprint(pending.line)


def _same_fingerprint(shown: str, fingerprint: str) -> bool:
    """`shown` is “ssh-ed25519 SHA256:…” as displayed, or just the “SHA256:…” part."""
    words = shown.split()
    return bool(words) and (words == fingerprint.split() or words == fingerprint.split()[1:])


def pin_host_key(conn: Connection, shown: str) -> str:
    """Pin the key the last test read, if `shown` is its fingerprint; returns what was done."""
    shown = shown.strip()[:MAX_FINGERPRINT]
    if conn.host_key:
        raise PinRefused(f"{conn} already has a pinned host key; to pin another, clear it, save and test again.")
    if not conn.pending_host_key:
        raise PinRefused(f"No host key of {conn} is waiting to be pinned: test the connection first.")
    pending = pending_key(conn)
    if pending is None:
        raise PinRefused(f"The host key waiting for {conn} was read from another address than {host_address(conn)}: test it again.")
    fingerprint = host_key_fingerprint(pending.line)
    if not _same_fingerprint(shown, fingerprint):
        raise PinRefused(
            f"The host key of {conn} was not pinned: the last test read {fingerprint}, not “{shown}”. "
            "Check this fingerprint with the server's administrator before pinning it."
        )
    # Only if nothing changed since it was read: a test or an edit in between pins nothing.
    changed = Connection.objects.filter(pk=conn.pk, host_key="", pending_host_key=conn.pending_host_key)
    if not changed.update(host_key=pending.line, pending_host_key=""):
        raise PinRefused(f"{conn} changed while its key was being pinned: look at it again.")
    conn.host_key, conn.pending_host_key = pending.line, ""
    return f"Pinned the host key {fingerprint} of {conn}."
