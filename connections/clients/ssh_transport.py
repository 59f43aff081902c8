"""Opening an authenticated SSH session with a pinned host key (SFTP and SSH share it).

Credentials go only to a server whose host key is pinned (SPEC §8.2). Before
that, a connection test only reads the server's key (`fetch_host_key`: key
exchange, then close) so that a superuser can check and pin it.
"""

from __future__ import annotations

import base64
import binascii
import io
import socket

import paramiko

from connections.clients import deadline
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
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase or None)
        except paramiko.PasswordRequiredException:
            raise ClientError(f"The private key of {label} needs a passphrase.", permanent=True) from None
        except (paramiko.SSHException, ValueError, TypeError):
            continue  # not a key of this type: try the next
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


class UnpinnedHostKey(ClientError):
    """The connection has no pinned host key; the server's key was read without logging in.

    Only a connection test raises this (see `raise_if_unpinned`); the key waits
    on the connection until a superuser pins it (connections/host_keys.py).
    """

    def __init__(self, conn, key: paramiko.PKey) -> None:
        self.key = key
        self.address = host_address(conn)
        super().__init__(
            f"Host key not pinned: {describe_key(key)}, read from {self.address} without logging in. "
            "Nothing else was sent to the server. A superuser checks this fingerprint with the server's administrator "
            "and pins it: “Pin this key” on the connection's admin page, or check_connections NAME --pin FINGERPRINT.",
            permanent=True,
        )


def describe_key(key: paramiko.PKey) -> str:
    """“ssh-ed25519 SHA256:…”: the key type and the fingerprint `ssh-keygen -l` prints."""
    return f"{key.get_name()} {key.fingerprint}"


def host_address(conn) -> str:
    """The server as known_hosts names it: “host” on port 22, “[host]:port” elsewhere."""
    port = conn.effective_port
    return conn.host if port == 22 else f"[{conn.host}]:{port}"


def fetch_host_key(conn) -> paramiko.PKey:
    """The server's host key, read in the key exchange; the transport is closed before any authentication."""
    label, port = str(conn), conn.effective_port
    try:
        sock = socket.create_connection((conn.host, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise _unreachable(conn, exc) from None
    transport = _Transport(sock)
    transport.banner_timeout = BANNER_TIMEOUT
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ClientError(f"SSH error with {conn.host}:{port} ({label}) while reading its host key: {exc}") from None
    finally:
        transport.close()


def raise_if_unpinned(conn) -> None:
    """For a connection test: with no pinned key, read the server's key and stop before logging in."""
    if not conn.host_key:
        raise UnpinnedHostKey(conn, fetch_host_key(conn))


def open_ssh(conn) -> paramiko.SSHClient:
    """Connect and authenticate; the server must present the pinned host key.

    Without a pinned key nothing is sent at all, not even a connection attempt:
    credentials go only to a server whose key a superuser has pinned.
    """
    label = str(conn)
    port = conn.effective_port
    if not conn.host_key:
        raise ClientError(
            f"{label} has no pinned host key: before it is used, a superuser presses “Test connection” on the "
            "connection's admin page and then “Pin this key”. Nothing was sent to the server.",
            permanent=True,
        )
    client = paramiko.SSHClient()
    key = parse_host_key(conn.host_key, label)
    client.get_host_keys().add(host_address(conn), key.get_name(), key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    auth = {"password": conn.password or None}
    if conn.private_key:
        auth["pkey"] = load_private_key(conn.private_key, conn.key_passphrase, label)
    try:
        client.connect(
            conn.host, port=port, username=conn.username, timeout=deadline.limit(CONNECT_TIMEOUT),
            banner_timeout=deadline.limit(BANNER_TIMEOUT), auth_timeout=deadline.limit(AUTH_TIMEOUT),
            channel_timeout=deadline.limit(CHANNEL_TIMEOUT),
            allow_agent=False, look_for_keys=False, transport_factory=_Transport, **auth,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise ClientError(
            f"The host key of {conn.host}:{port} does not match the key pinned for {label} "
            f"(server offered {describe_key(exc.key)}). Refusing to connect.",
            permanent=True,
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        raise _ssh_error(exc, label, conn, port) from None
    except OSError as exc:
        client.close()
        raise _unreachable(conn, exc) from None
    return client


def _unreachable(conn, exc: OSError) -> ClientError:
    where = f"{conn.host}:{conn.effective_port} ({conn})"
    if isinstance(exc, TimeoutError):  # socket.timeout is the same class
        return ClientError(f"Timed out connecting to {where}.")
    return ClientError(f"Cannot connect to {where}: {_reason(exc)}.")


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
