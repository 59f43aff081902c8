"""Function-scoped in-process servers: FTP/FTPS (pyftpdlib), SMTP (aiosmtpd), HTTP.

They run in daemon threads of the test process, bind loopback only, and are closed
at the end of each test (TESTING.md sections 3, 6 and 9).
"""

from __future__ import annotations

import email
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

from tests.servers_common import HOST, free_port
from tests.servers_crypto import TlsCert

__all__ = [
    "FtpServer",
    "SmtpServer",
    "SmtpEnvelope",
    "HttpServer",
    "ReceivedRequest",
    "ftp_server",
    "ftps_server",
    "smtp_server",
    "http_server",
]

# In-process servers need no OS account: their own credentials.
USER = "etl"
PASSWORD = "etlpass"


@dataclass(frozen=True)
class FtpServer:
    """pyftpdlib server; the FTP user's "/" is ``root`` (so ``STOR a.csv`` -> root/a.csv).

    ``cafile`` is set for FTPS only: the self-signed certificate to trust. ftplib's
    FTP_TLS needs a client context capped at TLS 1.2 (TLS 1.3 breaks on the data
    channel with SHUTDOWN_WHILE_IN_INIT), then ``prot_p()``.
    """

    host: str
    port: int
    username: str
    password: str
    root: Path
    cafile: Path | None = None


def _pyftpdlib() -> ModuleType:
    # On 3.11 pyftpdlib imports the deprecated stdlib asyncore/asynchat;
    # that's pyftpdlib's business, not a warning about Courier's code.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"The (asyncore|asynchat) module", DeprecationWarning)
        import pyftpdlib.authorizers
        import pyftpdlib.handlers
        import pyftpdlib.servers
    return pyftpdlib


def _serve_ftp(
    base: type, root: Path, cafile: Path | None = None, **handler_attrs: Any
) -> Iterator[FtpServer]:
    pyftpdlib = _pyftpdlib()
    root.mkdir(parents=True, exist_ok=True)
    authorizer = pyftpdlib.authorizers.DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
    # A subclass per test: pyftpdlib configures handlers through class attributes.
    handler = type("CourierFTPHandler", (base,), {"authorizer": authorizer, **handler_attrs})
    # Short per-connection poll so close_all() joins client threads quickly.
    server_cls = type("CourierFTPServer", (pyftpdlib.servers.ThreadedFTPServer,), {"poll_timeout": 0.05})
    server = server_cls((HOST, 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"timeout": 0.05, "handle_exit": False}, daemon=True
    )
    thread.start()
    try:
        yield FtpServer(HOST, server.address[1], USER, PASSWORD, root, cafile)
    finally:
        server.close_all()
        thread.join(timeout=5)


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    yield from _serve_ftp(_pyftpdlib().handlers.FTPHandler, tmp_path / "ftp")


@pytest.fixture
def ftps_server(tmp_path: Path, tls_cert: TlsCert) -> Iterator[FtpServer]:
    """Explicit FTPS (AUTH TLS) with TLS required on control and data channels."""
    # pyftpdlib only defines TLS_FTPHandler when pyOpenSSL imports.
    tls_handler = getattr(_pyftpdlib().handlers, "TLS_FTPHandler", None)
    if tls_handler is None:
        pytest.skip("FTPS needs pyOpenSSL: pip install pyOpenSSL (pyftpdlib[ssl])")
    yield from _serve_ftp(
        tls_handler,
        tmp_path / "ftps",
        cafile=tls_cert.cert_path,
        certfile=str(tls_cert.cert_path),
        keyfile=str(tls_cert.key_path),
        tls_control_required=True,
        tls_data_required=True,
    )


@dataclass(frozen=True)
class SmtpEnvelope:
    mail_from: str
    rcpt_tos: list[str]
    authenticated_as: str | None  # the AUTH login, None for unauthenticated mail


@dataclass(frozen=True)
class SmtpServer:
    """aiosmtpd server: AUTH PLAIN/LOGIN offered without TLS, but optional.

    ``messages`` holds each received mail parsed from the wire bytes with
    ``email.policy.default``; ``envelopes[i]`` is the SMTP envelope of ``messages[i]``.
    """

    host: str
    port: int
    username: str
    password: str
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[SmtpEnvelope] = field(default_factory=list)


class _SmtpRecorder:
    def __init__(self, target: SmtpServer) -> None:
        self.target = target

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.login.decode() if session.authenticated else None
        self.target.envelopes.append(SmtpEnvelope(envelope.mail_from, list(envelope.rcpt_tos), login))
        raw = envelope.original_content or envelope.content
        self.target.messages.append(cast(EmailMessage, email.message_from_bytes(raw, policy=policy.default)))
        return "250 OK"


def _smtp_authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    target = SmtpServer(HOST, free_port(), USER, PASSWORD)
    controller = Controller(
        _SmtpRecorder(target),
        hostname=HOST,
        port=target.port,
        authenticator=_smtp_authenticator,
        auth_require_tls=False,  # plain AUTH, as many internal relays allow
    )
    controller.start()
    try:
        yield target
    finally:
        controller.stop()


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: Message  # case-insensitive: headers["private-token"]


@dataclass(frozen=True)
class HttpServer:
    """Static files from ``root`` at ``url`` (no trailing slash: ``f"{url}/a.py"``).

    ``received`` records every GET/HEAD with its headers, to assert e.g. a token arrived.
    """

    url: str
    root: Path
    received: list[ReceivedRequest] = field(default_factory=list)


class _RecordingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    received: list[ReceivedRequest]


class _RecordingHandler(SimpleHTTPRequestHandler):
    def send_head(self) -> Any:
        server = cast(_RecordingHTTPServer, self.server)
        server.received.append(ReceivedRequest(self.command, self.path, self.headers))
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    root = tmp_path / "www"
    root.mkdir()
    httpd = _RecordingHTTPServer((HOST, 0), partial(_RecordingHandler, directory=str(root)))
    target = HttpServer(f"http://{HOST}:{httpd.server_address[1]}", root)
    httpd.received = target.received
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
