"""The SSH command client against a real OpenSSH sshd: output, exit status, limits, host keys."""

from __future__ import annotations

import io

import pytest

from connections.clients import ClientError
from connections.kinds import client_for
from tests import factories

pytestmark = pytest.mark.django_db


def ssh_conn(server, **overrides):
    fields = dict(host=server.host, port=server.port, username=server.username, password=server.password,
                  host_key=server.host_key_line)
    fields.update(overrides)
    return factories.connection("ssh", **fields)


def run(conn, command, timeout=30, stdout_file=None):
    out, err = [], []
    status = client_for(conn).run_command(command, on_stdout=out.append, on_stderr=err.append, stdout_file=stdout_file, timeout=timeout)
    return status, out, err


def test_stdout_stderr_and_exit_status(sshd):
    status, out, err = run(ssh_conn(sshd), "id -un; echo oops >&2; printf 'no newline'; exit 3")
    assert status == 3
    assert out == [sshd.username, "no newline"]
    assert err == ["oops"]


def test_key_login_and_stdout_copied_byte_for_byte(sshd):
    conn = ssh_conn(sshd, password="", private_key=sshd.client_key_passphrase_path.read_text(), key_passphrase=sshd.passphrase)
    sink = io.BytesIO()
    # printf with octal escapes: bytes that are not UTF-8 must arrive unchanged.
    status, out, _ = run(conn, r"printf 'caf\351\000\r\nend'", stdout_file=sink)
    assert status == 0
    assert sink.getvalue() == b"caf\xe9\x00\r\nend"
    assert out == ["caf\ufffd\x00", "end"]  # the log gets readable text


def test_a_command_past_its_limit_is_stopped(sshd):
    with pytest.raises(ClientError, match="ran longer than the limit of 1 s"):
        run(ssh_conn(sshd), "sleep 20", timeout=1)


def test_unpinned_connection_is_refused_outside_a_test(sshd):
    with pytest.raises(ClientError, match="no pinned host key") as failure:
        run(ssh_conn(sshd, host_key=""), "true")
    assert failure.value.permanent


def test_mismatched_host_key_is_refused(sshd):
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    with pytest.raises(ClientError, match="does not match the key pinned") as failure:
        run(ssh_conn(sshd, host_key=other), "true")
    assert failure.value.permanent
