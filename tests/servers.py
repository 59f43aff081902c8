"""Pytest fixtures that start REAL servers on 127.0.0.1 for Courier's tests.

Load with ``pytest_plugins = ["tests.servers"]`` in the root conftest (or
``from tests.servers import *``, or ``pytest -p tests.servers``). Nothing here
imports Django. Every fixture starts lazily, only when a test requests it, and
skips when its binary, driver or root privileges are missing.

Session-scoped (system daemons, stopped by PID at session end):
    sshd -> SshServer, smb_server -> SmbServer, tls_cert -> TlsCert,
    pg_odbc / mariadb_odbc -> OdbcDatabase
Function-scoped (in-process or cheap):
    ftp_server / ftps_server -> FtpServer, smtp_server -> SmtpServer,
    http_server -> HttpServer, gpg_home -> GpgKeyPair, sqlite_odbc -> OdbcDatabase

Recipes and measurements: /work/shared/TESTING.md.
"""

from __future__ import annotations

from tests.servers_common import (
    ensure_test_user,
    free_port,
    need_binary,
    need_root,
    shared_tmp,
    stop_process,
    wait_port,
)
from tests.servers_crypto import GpgKeyPair, TlsCert, gpg_home, throwaway_gnupghome, tls_cert
from tests.servers_daemons import SmbServer, SshServer, smb_server, sshd
from tests.servers_inprocess import (
    FtpServer,
    HttpServer,
    ReceivedRequest,
    SmtpEnvelope,
    SmtpServer,
    ftp_server,
    ftps_server,
    http_server,
    smtp_server,
)
from tests.servers_odbc import OdbcDatabase, mariadb_odbc, pg_odbc, sqlite_odbc

__all__ = [
    # helpers
    "ensure_test_user",
    "free_port",
    "need_binary",
    "need_root",
    "shared_tmp",
    "stop_process",
    "throwaway_gnupghome",
    "wait_port",
    # descriptions
    "FtpServer",
    "GpgKeyPair",
    "HttpServer",
    "OdbcDatabase",
    "ReceivedRequest",
    "SmbServer",
    "SmtpEnvelope",
    "SmtpServer",
    "SshServer",
    "TlsCert",
    # fixtures
    "ftp_server",
    "ftps_server",
    "gpg_home",
    "http_server",
    "mariadb_odbc",
    "pg_odbc",
    "smb_server",
    "smtp_server",
    "sqlite_odbc",
    "sshd",
    "tls_cert",
]
