"""Helpers shared by the real-server fixtures (see tests/servers.py).

Recipes and their rationale: /work/shared/TESTING.md, section 2.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

__all__ = [
    "HOST",
    "TEST_USER",
    "TEST_PASSWORD",
    "free_port",
    "wait_port",
    "shared_tmp",
    "ensure_test_user",
    "need_binary",
    "need_root",
    "stop_process",
    "log_tail",
]

HOST = "127.0.0.1"
# OS login used by sshd and smbd; both check the real /etc/shadow / tdbsam entry.
TEST_USER = "etltest"
TEST_PASSWORD = "etlpass"

_user_ready = False


def free_port() -> int:
    """A currently free TCP port on loopback, for daemons that can't bind port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 10.0,
    log: Path | None = None,
) -> None:
    """Block until `port` accepts TCP connections; fail fast if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} before listening on {port}"
                + log_tail(log)
            )
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout}s" + log_tail(log))


def log_tail(log: Path | None, lines: int = 20) -> str:
    """Last lines of a daemon log, to make start-up failures self-explaining."""
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log) + " ---\n" + "\n".join(tail)


def shared_tmp(prefix: str) -> Path:
    """A 0755 directory directly under /tmp.

    pytest's tmp_path sits below a root-only 0700 directory that daemons running
    as other users (etltest, postgres, mysql) can't traverse; short paths also keep
    Unix socket paths under the ~107-byte limit.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (creates an OS user / runs a system daemon)")


def need_binary(path: str, package: str) -> str:
    """Return `path` if executable, else skip naming the apt package to install."""
    found = path if os.access(path, os.X_OK) else shutil.which(os.path.basename(path))
    if not found:
        pytest.skip(f"{path} not found (apt-get install {package})")
    return found


def ensure_test_user() -> pwd.struct_passwd:
    """Create etltest if missing and (re)set its password; idempotent per process."""
    global _user_ready
    need_root()
    if not _user_ready:
        try:
            pwd.getpwnam(TEST_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "-m", "-s", "/bin/bash", TEST_USER], check=True, capture_output=True
            )
        # Always reset: a pre-existing etltest may carry another password.
        subprocess.run(
            ["chpasswd"], input=f"{TEST_USER}:{TEST_PASSWORD}\n", text=True,
            check=True, capture_output=True,
        )
        _user_ready = True
    return pwd.getpwnam(TEST_USER)


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0
) -> None:
    """Stop exactly the process we started (never by name), escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
