"""Large files keep the link busy and arrive byte for byte (issue 20.5).

SFTP downloads read ahead in windows of large requests (connections/clients/sftp.py);
SMB downloads and uploads keep several blocks in flight (connections/clients/smb.py).
Against the real sshd and Samba of the tests, with windows and blocks made
small so a few megabytes cross many of them, a partial last one included;
an empty file and a one-byte file too.
"""

from __future__ import annotations

import os

import pytest

from connections.clients import sftp, smb
from connections.clients.base import IfExists
from connections.kinds import client_for
from tests import factories
from tests.file_servers import put, smb_conn

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


@pytest.mark.parametrize("size", [0, 1, 64 * 1024 * 5, 1024 * 1024 + 4321])
def test_smb_blocks_in_flight_arrive_in_order_both_ways(smb_server, tmp_path, monkeypatch, size):
    monkeypatch.setattr(smb, "BLOCK", 64 * 1024)
    data = os.urandom(size)
    put(smb_server.root, "big.bin", data)
    local = tmp_path / "up.bin"
    local.write_bytes(data[::-1])
    with client_for(smb_conn(smb_server)) as client:
        client.download("big.bin", tmp_path / "big.bin")
        client.upload(local, "", "up.bin", IfExists.OVERWRITE)
    assert (tmp_path / "big.bin").read_bytes() == data
    assert (smb_server.root / "up.bin").read_bytes() == data[::-1]


def test_smb_full_blocks_wait_for_the_servers_credits(smb_server, tmp_path):
    """1 MiB blocks cost 16 credits each: more blocks than the server has granted credits for wait their turn."""
    data = os.urandom(40 * smb.BLOCK + 7)
    put(smb_server.root, "wide.bin", data)
    with client_for(smb_conn(smb_server)) as client:
        client.download("wide.bin", tmp_path / "wide.bin")
        client.upload(tmp_path / "wide.bin", "", "back.bin", IfExists.OVERWRITE)
    assert (tmp_path / "wide.bin").read_bytes() == data
    assert (smb_server.root / "back.bin").read_bytes() == data
