"""SFTP downloads read ahead in windows of large requests (connections/clients/sftp.py, issue 20.5), byte for byte.

Against the real OpenSSH sshd of the tests, with the window made small so a
few megabytes cross many windows, a partial last window and a partial last
request; an empty file and a one-byte file too.
"""

from __future__ import annotations

import os

import pytest

from connections.clients import sftp
from connections.kinds import client_for
from tests import factories
from tests.file_servers import put

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_windows(monkeypatch):
    monkeypatch.setattr(sftp, "READ_AHEAD", 3)


@pytest.mark.parametrize("size", [0, 1, 255 * 1024 * 3, 3 * 1024 * 1024 + 12345])
def test_a_file_across_many_read_windows_arrives_byte_for_byte(sshd, tmp_path, small_windows, size):
    data = os.urandom(size)
    put(sshd.root, "big.bin", data)
    with client_for(factories.sftp_connection(sshd)) as client:
        assert client.read_limit == 255 * 1024  # OpenSSH's own limit, asked through limits@openssh.com
        client.download("big.bin", tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == data
