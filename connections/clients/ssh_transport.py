"""Opening an authenticated SSH session with a pinned host key (SFTP and SSH share it)."""

from __future__ import annotations

import base64
import binascii
import io
import socket

import paramiko

from connections.clients.base import ClientError

# Every blocking step gets its own limit: a call stuck in a socket read cannot
# be interrupted by django-q2's timeout (SPEC §11).
CONNECT_TIMEOUT = 20
BANNER_TIMEOUT = 20
AUTH_TIMEOUT = 30
CHANNEL_TIMEOUT = 60


def parse_host_key(line: str, label: str) -> paramiko.PKey:
    parts = line.split()
    if len(parts) < 2:
        raise ClientError(f"The pinned host key of {label} is not of the form “ssh-ed25519 AAAA…”.", permanent=True)
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
    except (binascii.Error, paramiko.SSHException, ValueError) as exc:
        raise ClientError(f"The pinned host key of {label} cannot be read: {exc}", permanent=True) from None


def host_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def load_private_key(text: str, passphrase: str, label: str) -> paramiko.PKey:
    errors = []
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase or None)
        except paramiko.PasswordRequiredException:
            raise ClientError(f"The private key of {label} needs a passphrase.", permanent=True) from None
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            errors.append(str(exc))
    raise ClientError(
        f"The private key of {label} cannot be read (wrong passphrase, or not an RSA, ECDSA or Ed25519 key).",
        permanent=True,
    )


class _Transport(paramiko.Transport):
    """paramiko's transport with AES-GCM preferred over AES-CTR + HMAC.

    GCM authenticates as it encrypts, without a second pass over every packet
    for the HMAC; that made SFTP uploads about a quarter faster
    (bench/sftp_upload.py, docs/benchmarks.md). A server without GCM simply
    negotiates the next cipher in paramiko's own order.
    """

    _preferred_ciphers = (
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        *(name for name in paramiko.Transport._preferred_ciphers if "-gcm@" not in name),
    )


class _RememberKey(paramiko.MissingHostKeyPolicy):
    """Accept an unknown key only to report it, for the first test of a connection."""

    def missing_host_key(self, client, hostname, key):
        client.seen_host_key = key


def open_ssh(conn, *, pin_unknown: bool = False) -> paramiko.SSHClient:
    """Connect and authenticate; the server must present the pinned host key.

    With `pin_unknown` (only the connection test does this) a connection that
    has no pinned key yet accepts the server's key and records it on `conn`.
    """
    label = str(conn)
    client = paramiko.SSHClient()
    client.seen_host_key = None
    port = conn.effective_port
    host_id = conn.host if port == 22 else f"[{conn.host}]:{port}"
    if conn.host_key:
        key = parse_host_key(conn.host_key, label)
        client.get_host_keys().add(host_id, key.get_name(), key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    elif pin_unknown:
        client.set_missing_host_key_policy(_RememberKey())
    else:
        raise ClientError(
            f"{label} has no pinned host key: run “Test connection” once to pin the server's key.", permanent=True
        )
    auth = {"password": conn.password or None}
    if conn.private_key:
        auth["pkey"] = load_private_key(conn.private_key, conn.key_passphrase, label)
    try:
        client.connect(
            conn.host, port=port, username=conn.username, timeout=CONNECT_TIMEOUT,
            banner_timeout=BANNER_TIMEOUT, auth_timeout=AUTH_TIMEOUT, channel_timeout=CHANNEL_TIMEOUT,
            allow_agent=False, look_for_keys=False, transport_factory=_Transport, **auth,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise ClientError(
            f"The host key of {conn.host}:{port} does not match the key pinned for {label} "
            f"(server offered {exc.key.get_name()} {exc.key.fingerprint}). Refusing to connect.",
            permanent=True,
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        raise _ssh_error(exc, label, conn, port) from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise ClientError(f"Timed out connecting to {conn.host}:{port} ({label}).") from None
    except OSError as exc:
        client.close()
        raise ClientError(f"Cannot connect to {conn.host}:{port} ({label}): {_reason(exc)}.") from None
    if client.seen_host_key is not None:
        conn.host_key = host_key_line(client.seen_host_key)
    return client


def _reason(exc: OSError) -> str:
    """Why the connection failed: paramiko wraps the socket errors of each address it tried; the first one says it."""
    inner = next(iter(getattr(exc, "errors", {}).values()), None)
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return exc.strerror or str(exc)


def _ssh_error(exc: paramiko.SSHException, label: str, conn, port: int) -> ClientError:
    if isinstance(exc, paramiko.AuthenticationException):
        return ClientError(f"Login to {conn.host}:{port} as {conn.username} was refused ({label}): wrong password or key.", permanent=True)
    if "not found in known_hosts" in str(exc) or "Server " in str(exc) and "not found" in str(exc):
        return ClientError(f"{conn.host}:{port} offered a host key of another type than the one pinned for {label}.", permanent=True)
    return ClientError(f"SSH error with {conn.host}:{port} ({label}): {exc}")
