"""SSH: run one command on a remote host, streaming its output; test a login.

The host key must match the one pinned on the connection (a superuser pins
the key a connection test read; see ssh_transport.py and host_keys.py). The command's exit status is
returned; stdout and stderr arrive line by line through callbacks, and stdout
can also be copied byte for byte into a file.
"""

from __future__ import annotations

import select
import time
from typing import BinaryIO

import paramiko

from connections.clients.base import Client, ClientError, LineSink
from connections.clients.ssh_transport import CHANNEL_TIMEOUT, describe_key, open_ssh, raise_if_unpinned

CHUNK = 64 * 1024
# How long one wait for output lasts before the deadline is looked at again.
POLL_SECONDS = 0.5


class _Lines:
    """Turns chunks of bytes into text lines for the log (invalid UTF-8 shown as �)."""

    def __init__(self, sink: LineSink) -> None:
        self.sink = sink
        self.pending = b""

    def feed(self, data: bytes) -> None:
        *complete, self.pending = (self.pending + data).split(b"\n")
        for line in complete:
            self.sink(line.rstrip(b"\r").decode("utf-8", errors="replace"))

    def close(self) -> None:
        if self.pending:
            self.sink(self.pending.rstrip(b"\r").decode("utf-8", errors="replace"))
            self.pending = b""


EOF_GRACE_SECONDS = 2.0


def _pump(channel, out: _Lines, err: _Lines, stdout_file, deadline: float, timeout: float, label: str) -> int:
    exited_at = 0.0
    while True:
        got = False
        while channel.recv_ready():
            data = channel.recv(CHUNK)
            got = True
            out.feed(data)
            if stdout_file is not None:
                stdout_file.write(data)
        while channel.recv_stderr_ready():
            got = True
            err.feed(channel.recv_stderr(CHUNK))
        if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
            # sshd may report the exit status before the last output; its EOF
            # comes after both streams are drained. A background child that
            # keeps the streams open gets a short grace, not the whole limit.
            exited_at = exited_at or time.monotonic()
            if channel.eof_received or time.monotonic() - exited_at > EOF_GRACE_SECONDS:
                break
        if time.monotonic() > deadline:
            channel.close()
            raise ClientError(f"The command on {label} was stopped: it ran longer than the limit of {timeout:.0f} s.")
        if not got:
            # The channel's file descriptor becomes readable on stdout, stderr or close.
            select.select([channel], [], [], POLL_SECONDS)
    out.close()
    err.close()
    return channel.recv_exit_status()


class SshClient(Client):
    """Each command gets its own login: one command is one session."""

    def test(self) -> str:
        """Log in without running anything; with no pinned host key, only read the server's key (UnpinnedHostKey)."""
        conn = self.conn
        raise_if_unpinned(conn)
        client = open_ssh(conn)
        try:
            key = client.get_transport().get_remote_server_key()
        finally:
            client.close()
        return f"Logged in to {conn.host}:{conn.effective_port} as {conn.username}; host key {describe_key(key)}."

    def run_command(self, command: str, *, on_stdout: LineSink, on_stderr: LineSink,
                    stdout_file: BinaryIO | None = None, timeout: float) -> int:
        client = open_ssh(self.conn)
        try:
            try:
                channel = client.get_transport().open_session(timeout=CHANNEL_TIMEOUT)
                channel.exec_command(command)
            except (paramiko.SSHException, OSError) as exc:
                raise ClientError(f"{self.label} accepted the login but could not start the command: {exc}") from None
            return _pump(channel, _Lines(on_stdout), _Lines(on_stderr), stdout_file, time.monotonic() + timeout, timeout, self.label)
        finally:
            client.close()
