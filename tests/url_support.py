"""Local HTTP servers for the token and address tests: each answers from a small route table and records what it received.

`recorders()` starts one more server per call (all stopped at the end of the
test); every request's path and headers are kept in `received`, so a test can
assert which server saw which token, or that a server saw nothing at all.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Recorder:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    forward_to: str = ""  # when set, every request is redirected (301) to the same path there
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def answer(self, path: str, body: str | bytes, status: int = 200) -> None:
        self.routes[path] = (status, {}, body.encode() if isinstance(body, str) else body)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": location}, b"")

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (any case) that reached this server."""
        return [value for _, headers in self.received for key, value in headers.items() if key.lower() == name.lower()]


class _Handler(BaseHTTPRequestHandler):
    recorder: Recorder

    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply()

    def _reply(self) -> None:
        target = self.recorder
        target.received.append((self.path, dict(self.headers.items())))
        if target.forward_to:
            status, headers, body = 301, {"Location": target.forward_to + self.path}, b""
        else:
            status, headers, body = target.routes.get(self.path.split("?")[0], (404, {}, b"not here"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


def outward_address() -> str:
    """This machine's own address on its network (not loopback), or "" when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: picks the outgoing interface, sends nothing
        except OSError:
            return ""
        address = probe.getsockname()[0]
    return "" if address.startswith("127.") else address


@pytest.fixture
def recorders() -> Iterator[Callable[[], Recorder]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(host: str = "127.0.0.1") -> Recorder:
        server = ThreadingHTTPServer((host, 0), _Handler)
        server.daemon_threads = True
        recorder = Recorder(f"http://{host}:{server.server_address[1]}")
        server.RequestHandlerClass = type("Handler", (_Handler,), {"recorder": recorder})
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return recorder

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
