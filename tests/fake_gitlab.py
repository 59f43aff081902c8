"""A stand-in for GitLab: there is no GitLab server to be had here.

A small HTTP server that answers GitLab's raw-file API path
(/api/v4/projects/<url-encoded project>/repository/files/<url-encoded file>/raw?ref=<branch>)
and /api/v4/version, and insists on the PRIVATE-TOKEN header, as GitLab does.
The instance lives under /gitlab, to show that a base path is kept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

TOKEN = "glpat-Test-Token-123"


@dataclass
class FakeGitLab:
    url: str
    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (project, ref, path) -> bytes
    seen: list[tuple[str, str, str]] = field(default_factory=list)


class _GitLabHandler(BaseHTTPRequestHandler):
    gitlab: FakeGitLab

    def do_GET(self) -> None:
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            return self._answer(401, b'{"message":"401 Unauthorized"}')
        parts = urlsplit(self.path)
        if parts.path == "/api/v4/version":
            return self._answer(200, json.dumps({"version": "17.0.0-fake"}).encode())
        # Split before decoding: project and file are each one %2F-encoded segment.
        segments = parts.path.split("/")
        if segments[1:4] != ["api", "v4", "projects"] or segments[5:7] != ["repository", "files"] or segments[8:] != ["raw"]:
            return self._answer(404, b'{"message":"404 Not Found"}')
        project, path = unquote(segments[4]), unquote(segments[7])
        ref = parse_qs(parts.query).get("ref", ["HEAD"])[0]
        self.gitlab.seen.append((project, ref, path))
        body = self.gitlab.files.get((project, ref, path))
        if body is None:
            return self._answer(404, b'{"message":"404 File Not Found"}')
        self._answer(200, body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitLabHandler)
    fake = FakeGitLab(f"http://127.0.0.1:{server.server_address[1]}/gitlab")
    handler = type("Handler", (_GitLabHandler,), {"gitlab": fake})

    class Prefix(handler):
        def do_GET(self) -> None:
            self.path = self.path.removeprefix("/gitlab")
            super().do_GET()

    server.RequestHandlerClass = Prefix
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
