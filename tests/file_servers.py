"""One Courier connection per real file server, with the folder on disk that is its base folder.

Tests write files into that folder directly (they run as root) and read what
the client did there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories

FILE_KINDS = ["sftp", "ftp", "ftps", "smb"]


def ftp_conn(server, **overrides):
    fields = dict(host=server.host, port=server.port, username=server.username, password=server.password, folder="/")
    fields.update(overrides)
    return factories.connection("ftp", **fields)


def smb_conn(server, **overrides):
    fields = dict(host=server.host, port=server.port, share=server.share, username=server.username, password=server.password)
    fields.update(overrides)
    return factories.connection("smb", **fields)


def _private_folder(root: Path, tmp_path: Path) -> Path:
    # Session servers are shared by all tests: each test gets a folder of its own,
    # writable by the login user the daemon acts as.
    folder = root / f"t-{tmp_path.name[-24:]}"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def file_connection(request: pytest.FixtureRequest, kind: str, tmp_path: Path, name: str | None = None):
    """(connection, folder on disk) for `kind` in FILE_KINDS, starting the server it needs."""
    if kind == "ftp":
        server = request.getfixturevalue("ftp_server")
        return ftp_conn(server, name=name or kind), server.root
    if kind == "ftps":
        cert = request.getfixturevalue("tls_cert")
        request.getfixturevalue("monkeypatch").setenv("SSL_CERT_FILE", str(cert.cert_path))
        server = request.getfixturevalue("ftps_server")
        return ftp_conn(server, name=name or kind, tls=True), server.root
    if kind == "smb":
        server = request.getfixturevalue("smb_server")
        folder = _private_folder(server.root, tmp_path)
        return smb_conn(server, name=name or kind, folder=folder.name), folder
    server = request.getfixturevalue("sshd")
    folder = _private_folder(server.root, tmp_path)
    return factories.sftp_connection(server, name=name or kind, folder=str(folder)), folder


def mkdirs(folder: Path, relative: str) -> Path:
    """Create folders the daemons' login user may write into."""
    path = folder
    for part in Path(relative).parts:
        path = path / part
        path.mkdir(exist_ok=True)
        path.chmod(0o777)
    return path


def put(folder: Path, relative: str, data: bytes) -> Path:
    """Write a file the daemons' login user may read and replace."""
    path = mkdirs(folder, str(Path(relative).parent)) / Path(relative).name
    path.write_bytes(data)
    path.chmod(0o666)
    return path


DESTINATION_KINDS = [*FILE_KINDS, "folder"]


def destination_connection(request: pytest.FixtureRequest, kind: str, tmp_path: Path, name: str | None = None):
    """(connection, folder on disk that is its base folder) for every destination kind, a local folder included."""
    if kind == "folder":
        base = tmp_path / "share"
        base.mkdir(exist_ok=True)
        return factories.connection("folder", name=name or "local", folder=str(base)), base
    return file_connection(request, kind, tmp_path, name=name)
