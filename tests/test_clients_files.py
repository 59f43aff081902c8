"""FTP, FTPS, SMB and SFTP clients against real servers: listing, byte-exact download, atomic upload."""

from __future__ import annotations

import pytest

from connections.clients import ClientError
from connections.clients.base import IfExists
from connections.kinds import client_for
from tests import factories
from tests.file_servers import FILE_KINDS, file_connection, ftp_conn, mkdirs, put, smb_conn

pytestmark = pytest.mark.django_db

# Every byte value, a Latin-1 "é" and a NUL: any text-mode or encoding step would change it.
BINARY = bytes(range(256)) * 4 + b"caf\xe9;\x00\r\n"


@pytest.fixture(params=FILE_KINDS)
def remote(request, tmp_path):
    """(connection, folder on disk that is its base folder) for each file protocol."""
    return file_connection(request, request.param, tmp_path)


def test_entries_and_byte_exact_download(remote, tmp_path):
    conn, folder = remote
    put(folder, "data/blob.bin", BINARY)
    put(folder, "data/sub/x.txt", b"x")
    with client_for(conn) as client:
        assert [(e.name, e.is_dir) for e in client.entries("data")] == [("blob.bin", False), ("sub", True)]
        client.download("data/blob.bin", tmp_path / "blob.bin")
    assert (tmp_path / "blob.bin").read_bytes() == BINARY


def test_upload_is_atomic_and_honours_if_exists(remote, tmp_path):
    conn, folder = remote
    mkdirs(folder, "out")
    local = tmp_path / "report.csv"
    local.write_bytes(BINARY)
    with client_for(conn) as client:
        first = client.upload(local, "out", "report.csv")
        assert not first.skipped
        assert (folder / "out" / "report.csv").read_bytes() == BINARY

        local.write_bytes(b"second version\n")
        with pytest.raises(ClientError, match="already exists") as failure:
            client.upload(local, "out", "report.csv", IfExists.FAIL)
        assert failure.value.permanent
        assert (folder / "out" / "report.csv").read_bytes() == BINARY

        assert client.upload(local, "out", "report.csv", IfExists.SKIP).skipped
        assert (folder / "out" / "report.csv").read_bytes() == BINARY

        client.upload(local, "out", "report.csv", IfExists.OVERWRITE)
        assert (folder / "out" / "report.csv").read_bytes() == b"second version\n"
    # Only the final name is there: no temporary ".report.csv.xxxx.part" is left behind.
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["report.csv"]


def test_upload_into_a_missing_folder_fails_cleanly(remote, tmp_path):
    conn, folder = remote
    local = tmp_path / "a.csv"
    local.write_bytes(b"a\n")
    with client_for(conn) as client, pytest.raises(ClientError) as failure:
        client.upload(local, "no-such-folder", "a.csv")
    assert "no-such-folder" in str(failure.value)
    assert not (folder / "no-such-folder").exists()


def test_connection_test_reports_what_it_saw(remote):
    conn, folder = remote
    put(folder, "seen.txt", b"1")
    message = client_for(conn).test()
    assert "entries" in message and conn.host in message


@pytest.mark.parametrize("kind", ["ftp", "smb"])
def test_wrong_password_is_a_permanent_failure_without_the_password(kind, request, monkeypatch):
    from pyftpdlib.handlers import FTPHandler

    monkeypatch.setattr(FTPHandler, "auth_failed_timeout", 0)  # pyftpdlib waits 3 s before saying no
    server = request.getfixturevalue("ftp_server" if kind == "ftp" else "smb_server")
    conn = (ftp_conn if kind == "ftp" else smb_conn)(server, password="Wr0ng-Canary")
    with pytest.raises(ClientError) as failure:
        client_for(conn).test()
    assert failure.value.permanent
    assert "refused" in str(failure.value)
    assert "Wr0ng-Canary" not in str(failure.value)


def test_ftps_uses_tls_1_2_and_checks_the_certificate(ftps_server, tls_cert, monkeypatch):
    conn = ftp_conn(ftps_server, tls=True)
    # The system store does not know the test CA: refused, and saying why.
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
    with pytest.raises(ClientError, match="not trusted") as failure:
        client_for(conn).test()
    assert failure.value.permanent
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert.cert_path))
    assert "TLSv1.2" in client_for(conn).test()
    # Switching verification off is the connection's explicit choice.
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
    conn.verify_tls = False
    assert "TLSv1.2" in client_for(conn).test()


def test_plain_ftp_against_an_ftps_only_server_is_refused(ftps_server):
    with pytest.raises(ClientError) as failure:
        client_for(ftp_conn(ftps_server)).test()
    assert failure.value.permanent


def test_smb_missing_share_is_named(smb_server):
    with pytest.raises(ClientError, match="share “nosuchshare” does not exist"):
        client_for(smb_conn(smb_server, share="nosuchshare")).test()


def test_nothing_listening_is_a_transient_failure():
    from tests.servers_common import free_port

    port = free_port()
    for kind, fields in [("ftp", {}), ("smb", {"share": "x", "username": "u"})]:
        conn = factories.connection(kind, name=f"dead-{kind}", host="127.0.0.1", port=port, **fields)
        with pytest.raises(ClientError) as failure:
            client_for(conn).test()
        assert not failure.value.permanent, str(failure.value)
        assert "127.0.0.1" in str(failure.value)


def test_overwrite_replaces_a_file_someone_else_put_there(remote, tmp_path):
    # A vendor's file without an execute bit (smbclient's own replace() is refused on those by Samba).
    conn, folder = remote
    put(folder, "drop/vendor.csv", b"old\n")
    local = tmp_path / "vendor.csv"
    local.write_bytes(BINARY)
    with client_for(conn) as client:
        client.upload(local, "drop", "vendor.csv", IfExists.OVERWRITE)
    assert (folder / "drop" / "vendor.csv").read_bytes() == BINARY
    assert sorted(p.name for p in (folder / "drop").iterdir()) == ["vendor.csv"]
