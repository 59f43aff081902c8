"""`make run` as a new user meets it: a .env without DEBUG, the port of their choice, styled pages with DEBUG off."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def test_make_run_writes_an_env_without_debug(tmp_path):
    """scripts/ensure-env.sh on a fresh machine: new keys, and DEBUG left at its default (off)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "ensure-env.sh", tmp_path / "scripts" / "ensure-env.sh")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    subprocess.run(["bash", str(tmp_path / "scripts" / "ensure-env.sh")], check=True, capture_output=True)
    text = (tmp_path / ".env").read_text()
    keys = {line.partition("=")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert keys == {"SECRET_KEY", "COURIER_SECRET_KEYS"}
    assert "DEBUG" not in text


def test_make_run_passes_the_port_on():
    dry_run = subprocess.run(["make", "-n", "-C", str(ROOT), "run", "PORT=8123"], capture_output=True, text=True, check=True)
    assert "COURIER_PORT=8123 scripts/serve.sh" in dry_run.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, deadline: float) -> tuple[int, bytes]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not VENV_PYTHON.exists(), reason="serve.sh runs the project's .venv (made by `make run`/`make test`)")
@pytest.mark.skipif(connection.vendor != "sqlite", reason="points the served site at the SQLite test database")
def test_serve_listens_on_courier_port_with_styled_pages_and_debug_off(tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(COURIER_PORT=str(port), COURIER_ENV_FILE="/dev/null", COURIER_VAR_DIR=str(tmp_path / "var"),
               DATABASE_URL=f"sqlite:///{connection.settings_dict['NAME']}", SECRET_KEY="serve-test-key",
               COURIER_SECRET_KEYS=settings.COURIER_SECRET_KEYS[0])
    server = subprocess.Popen(["bash", str(ROOT / "scripts" / "serve.sh")], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        status, login = fetch(f"http://127.0.0.1:{port}/admin/login/", deadline)
        assert status == 200 and b'<link rel="icon" href="/static/courier/favicon.ico"' in login
        status, css = fetch(f"http://127.0.0.1:{port}/static/admin/css/base.css", deadline)
        assert status == 200 and b"--body-fg" in css  # the admin's look, served with DEBUG off
        status, icon = fetch(f"http://127.0.0.1:{port}/favicon.ico", deadline)
        assert status == 200 and icon[:4] == b"\x00\x00\x01\x00"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=5)
        assert missing.value.code == 404 and b"Traceback" not in missing.value.read()  # no debug page
    finally:
        # As Ctrl-C does: serve.sh's trap stops the web server and the cluster (a TERM to each of the
        # cluster's processes at once would leave its main process waiting forever).
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
