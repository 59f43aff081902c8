"""Fixtures for the processing-script tests: an offline wheelhouse, pip pointed at it, a git server.

Loaded as a plugin by tests/conftest.py, so the fixtures are available everywhere.

The wheelhouse holds tiny pure-Python wheels written with zipfile (a wheel is
a zip with the modules and a .dist-info folder), so no package index and no
build backend are needed:

- ``tinybase`` 1.0 — module ``tinybase`` with ``shout(text)``;
- ``tinyfmt`` 1.0 — module ``tinyfmt`` with ``fmt(text)``, *depends on tinybase*;
- ``PyYAML`` 99.0 — a stand-in whose module is called ``yaml``, to show that
  ``import yaml`` installs the distribution PyYAML.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from runs.models import Run
from runs.runner import execute
from runs.state import create_run

WHEELS = {
    ("tinybase", "1.0"): ({"tinybase.py": "def shout(text):\n    return text.upper() + '!'\n"}, []),
    ("tinyfmt", "1.0"): ({"tinyfmt.py": "from tinybase import shout\n\n\ndef fmt(text):\n    return '<' + shout(text) + '>'\n"}, ["tinybase"]),
    ("PyYAML", "99.0"): ({"yaml/__init__.py": "def safe_dump(value):\n    return 'yaml:' + repr(value)\n"}, []),
}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(folder: Path, name: str, version: str, modules: dict[str, str], requires: list[str]) -> Path:
    info = f"{name}-{version}.dist-info"
    files = {path: text.encode() for path, text in modules.items()}
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: courier-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    for (name, version), (modules, requires) in WHEELS.items():
        write_wheel(folder, name, version, modules, requires)
    return folder


@pytest.fixture
def offline_pip(settings, wheelhouse: Path, tmp_path: Path) -> Path:
    """pip installs only from the wheelhouse; each test gets its own (empty) environment cache. Returns that cache folder."""
    settings.COURIER_PIP_OPTIONS = ["--no-index", "--find-links", str(wheelhouse)]
    settings.COURIER_VENV_DIR = tmp_path / "venvs"
    return settings.COURIER_VENV_DIR


@pytest.fixture(scope="session")
def session_venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment cache shared by tests that do not look at how environments are built."""
    return tmp_path_factory.mktemp("venvs")


def run_task(task) -> Run:
    run = create_run(task, "manual")
    assert execute(run.pk) is not None
    run.refresh_from_db()
    return run


def log_text(run: Run, stage: str | None = None) -> str:
    lines = run.log_lines.all()
    if stage:
        lines = lines.filter(stage=stage)
    return "\n".join(lines.values_list("message", flat=True))


# ----------------------------------------------------------------------------
# Processes a script started, seen from the host (inside the sandbox they have other PIDs)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


def processes_with(marker: str) -> list[int]:
    """Host PIDs of the live processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if marker.encode() in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class ProcessWatch:
    """Looks for processes carrying `marker` in their command line while a run goes on, on a side thread."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.seen.update(processes_with(self.marker))

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def tcp_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on the worker's loopback: (its port, what each connection sent until it closed)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                received.append(b"".join(iter(lambda conn=conn: conn.recv(65536), b"")))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join()
        server.close()


# ----------------------------------------------------------------------------
# A git server speaking the "smart" HTTP protocol (shallow clones need it), via git http-backend.


@dataclass
class GitServer:
    url: str  # f"{url}/<repo>.git"
    root: Path  # bare repositories live here
    headers: list[dict[str, str]] = field(default_factory=list)

    def add_repo(self, name: str, branches: dict[str, dict[str, str]]) -> str:
        """A bare repository `name`.git whose branches hold the given files; returns its clone URL."""
        work = self.root.parent / f"{name}-work"
        git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.test"]
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
        for i, (branch, files) in enumerate(branches.items()):
            if i:
                subprocess.run([*git, "checkout", "-q", "-b", branch, "main"], check=True)
            for path, text in files.items():
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                (work / path).write_text(text)
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-q", "-m", branch], check=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(self.root / f"{name}.git")], check=True)
        return f"{self.url}/{name}.git"


class _GitHandler(BaseHTTPRequestHandler):
    server: _GitHttpServer

    def do_GET(self) -> None:
        self._backend(b"")

    def do_POST(self) -> None:
        self._backend(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _backend(self, body: bytes) -> None:
        self.server.target.headers.append(dict(self.headers.items()))
        parts = urlsplit(self.path)
        env = {
            "GIT_PROJECT_ROOT": str(self.server.target.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query, "REQUEST_METHOD": self.command, "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "PATH": "/usr/bin:/bin",
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n") if b"\r\n\r\n" in out else out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode().splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:
        pass


class _GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # git may open its connections in a burst; a busy test machine must not refuse one

    def server_activate(self) -> None:
        super().server_activate()
        # A connection reset while it waits in the backlog leaves select() saying "readable" and a
        # blocking accept() waiting for ever: shutdown() then hangs. With a timeout accept() gives up.
        self.socket.settimeout(1)
    target: GitServer


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    root = tmp_path / "git"
    root.mkdir()
    httpd = _GitHttpServer(("127.0.0.1", 0), _GitHandler)
    httpd.target = GitServer(f"http://127.0.0.1:{httpd.server_address[1]}", root)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.target
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
