"""Large files keep the link busy and arrive byte for byte (issue 20.5).

SFTP downloads read ahead in windows of large requests (connections/clients/sftp.py);
SMB downloads and uploads keep several blocks in flight, on encrypted sessions
through their own lean path (connections/clients/smb_wire.py).
Against the real sshd and Samba of the tests, with windows and blocks made
small so a few megabytes cross many of them, a partial last one included;
an empty file and a one-byte file too.
"""

from __future__ import annotations

import os

import pytest

from connections.clients import sftp, smb, smb_wire
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


class SigningOnly(smb.Connection):
    """A connection that does not offer encryption, as an SMB 2 server would: the session is signed."""

    def connect(self, *args, **kwargs):
        super().connect(*args, **kwargs)
        self.supports_encryption = False


@pytest.fixture(params=["lean", "smbprotocol", "signed"])
def smb_path(request, monkeypatch):
    """Every way the bytes go: Courier's own on an AES-GCM session, smbprotocol's messages otherwise."""
    sent = []
    if request.param == "smbprotocol":
        monkeypatch.setattr(smb_wire, "uses_gcm", lambda connection, session: False)
    elif request.param == "signed":
        monkeypatch.setattr(smb, "Connection", SigningOnly)
    else:
        send = smb_wire.GcmWriter.send
        monkeypatch.setattr(smb_wire.GcmWriter, "send", lambda self, *args: sent.append(send(self, *args)) or sent[-1])
    yield
    if request.param == "lean":
        assert sent, "the uploads never took the lean path"


def round_trip(server, tmp_path, data: bytes) -> None:
    put(server.root, "big.bin", data)
    local = tmp_path / "up.bin"
    local.write_bytes(data[::-1])
    with client_for(smb_conn(server)) as client:
        client.download("big.bin", tmp_path / "big.bin")
        client.upload(local, "", "up.bin", IfExists.OVERWRITE)
    assert (tmp_path / "big.bin").read_bytes() == data
    assert (server.root / "up.bin").read_bytes() == data[::-1]


@pytest.mark.parametrize("size", [0, 1, 64 * 1024 * 5, 1024 * 1024 + 4321])
def test_smb_blocks_in_flight_arrive_in_order_both_ways(smb_server, tmp_path, monkeypatch, smb_path, size):
    monkeypatch.setattr(smb_wire, "LARGEST_BLOCK", 64 * 1024)
    monkeypatch.setattr(smb_wire, "IN_FLIGHT_BYTES", 3 * 64 * 1024)
    round_trip(smb_server, tmp_path, os.urandom(size))


def test_smb_full_blocks_wait_for_the_servers_credits(smb_server, tmp_path, smb_path):
    """8 MiB blocks cost 128 credits each, more than the server grants at first: they wait for (or ask) more."""
    round_trip(smb_server, tmp_path, os.urandom(5 * smb_wire.LARGEST_BLOCK + 7))


def test_smb_sessions_are_encrypted_when_the_server_can(smb_server):
    with client_for(smb_conn(smb_server)) as client:
        [connection] = client.cache.values()
        [session] = connection.session_table.values()
        assert session.encrypt_data
        assert "decrypt_on_receipt" in connection.transport.recv.__qualname__  # the lean receive path
        assert connection.max_read_size >= smb_wire.LARGEST_BLOCK  # Samba's 8 MiB: the blocks above are full ones


def test_smb_sessions_are_signed_when_the_server_cannot_encrypt(smb_server, monkeypatch):
    monkeypatch.setattr(smb, "Connection", SigningOnly)
    with client_for(smb_conn(smb_server)) as client:
        [connection] = client.cache.values()
        [session] = connection.session_table.values()
        assert not session.encrypt_data and session.signing_required
        assert "decrypt_on_receipt" not in connection.transport.recv.__qualname__
