"""A paramiko SSH server on loopback that writes down every login attempt made to it.

The second witness (beside the real sshd's own log) that a connection test of
an unpinned connection never sends a username, password or key: the server
completes the key exchange like any SSH server, then records each
`check_auth_*` call and refuses it. Its host key is a real ed25519 key made by
ssh-keygen and can be replaced mid-test, as when a server is reinstalled or
someone sits in between.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from tests.servers_common import HOST

__all__ = ["LoginAttempt", "SshWitness", "ssh_witness"]


@dataclass(frozen=True)
class LoginAttempt:
    method: str  # "none", "password" or "publickey"
    username: str
    secret: str  # the password, or the offered key's fingerprint


class _Recorder(paramiko.ServerInterface):
    def __init__(self, attempts: list[LoginAttempt]) -> None:
        self.attempts = attempts

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_none(self, username):
        self.attempts.append(LoginAttempt("none", username, ""))
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username, password):
        self.attempts.append(LoginAttempt("password", username, password))
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.attempts.append(LoginAttempt("publickey", username, key.fingerprint))
        return paramiko.AUTH_FAILED


@dataclass
class SshWitness:
    host: str
    port: int
    folder: Path
    key_file: Path = field(init=False)
    accepted: int = 0  # TCP connections
    key_exchanges: int = 0  # connections that were sent the server's host key
    attempts: list[LoginAttempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.new_host_key()

    def new_host_key(self) -> None:
        """Generate a fresh ed25519 host key; connections from now on see it."""
        path = self.folder / f"host_ed25519_{time.monotonic_ns()}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, capture_output=True)
        self.key_file = path

    @property
    def host_key_line(self) -> str:
        return " ".join(self.key_file.with_suffix(".pub").read_text().split()[:2])

    @property
    def fingerprint_from_ssh_keygen(self) -> str:
        """“SHA256:…” as `ssh-keygen -lf` prints it for the current host key."""
        out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.key_file.with_suffix(".pub"))],
                             check=True, capture_output=True, text=True).stdout
        return out.split()[1]

    def wait_for_key_exchanges(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.key_exchanges < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the test is over
            self.accepted += 1
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(paramiko.Ed25519Key(filename=str(self.key_file)))
        try:
            transport.start_server(server=_Recorder(self.attempts))
            while transport.is_active():
                time.sleep(0.02)
        except (paramiko.SSHException, EOFError, OSError):
            pass  # a client that has read the key may hang up before the server thinks the handshake is over
        finally:
            # The session id exists once the server has signed the exchange with its host key and sent both.
            self.key_exchanges += transport.session_id is not None
            transport.close()


@pytest.fixture
def ssh_witness(tmp_path: Path) -> Iterator[SshWitness]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(8)
    witness = SshWitness(HOST, listener.getsockname()[1], tmp_path)
    thread = threading.Thread(target=witness.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield witness
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
