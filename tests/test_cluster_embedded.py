"""The embedded default under load: one SQLite file, django-q2's ORM broker, a real `qcluster` as `make run` starts it.

The cluster runs as its own process group under tests.settings_embedded;
the helper steps (tests/embedded_helper.py) and `migrate` run in further
processes of the same site. The pytest process only reads the site's
SQLite file (WAL lets it read while the cluster writes).

Select with `pytest -m cluster`; they also run in the normal suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.cluster_support import ROOT, ClusterSite, wait_for
from tests.processing_support import pid_alive, processes_with
from tests.servers_common import free_port, shared_tmp, stop_process, wait_port

pytestmark = pytest.mark.cluster
# How long the every-minute projects run (the issue asks for five minutes).
FIRING_MINUTES = int(os.environ.get("COURIER_TEST_FIRING_MINUTES", "5"))


@dataclass
class EmbeddedSite(ClusterSite):
    helper: str = "tests.embedded_helper"

    @property
    def database(self) -> Path:
        return self.var / "courier.sqlite3"

    def query(self, sql: str, *params) -> list[tuple]:
        with closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute(sql, params).fetchall()


@pytest.fixture
def embedded_site() -> Iterator[EmbeddedSite]:
    var = shared_tmp("courier-embedded-")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_embedded", "COURIER_TEST_VAR_DIR": str(var),
           "PYTHONUNBUFFERED": "1"}
    site = EmbeddedSite(env=env, var=var)
    try:
        migrated = site.manage("migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield site
    finally:
        site.stop_clusters()
        shutil.rmtree(var, ignore_errors=True)


def run_row(site: EmbeddedSite, run_id: int) -> dict:
    rows = site.query("SELECT status, worker, error, attempt FROM runs_run WHERE id = ?", run_id)
    return dict(zip(("status", "worker", "error", "attempt"), rows[0], strict=True)) if rows else {}


def test_every_worker_busy_one_killed_its_run_is_reaped_in_time_its_processes_and_folder_gone_and_retried(embedded_site):
    site = embedded_site
    marker = f"courier-busy-{os.getpid()}-{time.monotonic_ns()}"
    # Two workers: runs 0 and 1 keep them busy; run 2 waits in the queue and takes the killed worker's place.
    busy = site.step("busy_runs", marker, "600", "600", "25")["runs"]
    lost, other, waiting = busy
    site.start_cluster()
    worker = wait_for(lambda: run_row(site, lost["run"]).get("status") == "running" and processes_with(lost["marker"])
                      and run_row(site, lost["run"])["worker"], "the first run's script to be running", timeout=120)
    wait_for(lambda: processes_with(other["marker"]), "the second run's script to be running", timeout=60)
    script = processes_with(lost["marker"])
    folder = site.var / "work" / f"run-{lost['run']}"
    assert folder.is_dir()

    site.step("make_quick", str(lost["task"]))  # its retry need not take ten minutes
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    killed_at = time.monotonic()

    # The script dies with its worker (the sandbox's PID namespace, --die-with-parent).
    wait_for(lambda: not any(pid_alive(pid) for pid in script), "the killed worker's script to die", timeout=5)
    # The killed worker is replaced and takes the waiting run: every worker is busy again.
    wait_for(lambda: run_row(site, waiting["run"]).get("status") == "running", "the waiting run to start", timeout=30)
    reaped = wait_for(lambda: run_row(site, lost["run"]).get("status") == "failed" and run_row(site, lost["run"]),
                      "the lost run to be reaped", timeout=120)
    reaped_after = time.monotonic() - killed_at
    assert run_row(site, other["run"])["status"] == "running" and run_row(site, waiting["run"])["status"] == "running"
    assert reaped["error"].startswith(f"Worker lost: {worker} gave no sign of life since ")
    wait_for(lambda: not folder.exists(), "the lost run's work folder to be removed", timeout=10)

    # Its retry starts (through its one-off schedule) once the short run has freed a worker, and succeeds.
    retry = wait_for(lambda: site.query("SELECT id, status FROM runs_run WHERE retry_of_id = ?", lost["run"]),
                     "the retry to be planned", timeout=10)[0]
    wait_for(lambda: run_row(site, retry[0]).get("status") == "succeeded", "the retry to succeed", timeout=150)
    assert run_row(site, other["run"])["status"] == "running"
    assert reaped_after < 120, reaped_after
    print(f"\nreaped {reaped_after:.1f} s after the SIGKILL, with every worker busy")


def fire_times(first: datetime, minutes: int) -> list[str]:
    return [(first + timedelta(minutes=n)).isoformat(sep=" ") for n in range(minutes)]


def test_twenty_every_minute_projects_on_the_embedded_default_lose_no_fire_time(embedded_site, sqlite_odbc):
    site = embedded_site
    first = datetime.fromisoformat(site.step("every_minute", "20", sqlite_odbc.odbc)["first"])
    site.start_cluster()
    expected = fire_times(first.astimezone(timezone.utc).replace(tzinfo=None), FIRING_MINUTES)
    last = first + timedelta(minutes=FIRING_MINUTES - 1)
    # Until the last fire time has its runs (django-q2 fires up to ~30 s late) and every run is over;
    # if that never happens, what is missing is counted below.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: site.query("SELECT count(*) FROM runs_run WHERE intended_at = ?", expected[-1])[0][0] >= 20
                 and site.query("SELECT count(*) FROM runs_run WHERE status IN ('queued', 'running')")[0][0] == 0,
                 "the last fire time's runs to finish", timeout=(last - datetime.now(timezone.utc)).total_seconds() + 150)
    site.stop_clusters()

    rows = site.query(
        "SELECT p.name, r.intended_at, r.status, count(*) FROM runs_run r JOIN tasks_task t ON t.id = r.task_id "
        "JOIN projects_project p ON p.id = t.project_id WHERE r.intended_at <= ? GROUP BY p.name, r.intended_at, r.status",
        expected[-1])
    per_fire = {(name, at[:19]): (status, n) for name, at, status, n in rows}
    wanted = {(f"minutely-{p:02d}", at[:19]) for p in range(20) for at in expected}
    missing = sorted(wanted - set(per_fire))
    locked = site.log_text().count("database is locked")
    assert not missing and not locked, (f"{len(missing)} of {len(wanted)} fire times without a run, e.g. {missing[:3]}; "
                                        f"“database is locked” {locked} times in the cluster's log")
    assert {key: value for key, value in per_fire.items() if value != ("succeeded", 1)} == {}
    armed = site.query("SELECT count(*) FROM django_q_schedule WHERE name LIKE 'courier:project:%' AND repeats = 1")[0][0]
    assert armed == 20
    # The sentinel's pass and both workers' polls (every second here) race for the due rows: each fire time was
    # fired once. Runs cannot tell (a second firing of a fire time starts nothing); django-q2's log can. A firing
    # made as the cluster stopped may have found no worker: its message is still in the queue.
    fired = len(re.findall(r"created task \S+ from schedule \[courier:project:", site.log_text()))
    fire_times_run = site.query("SELECT count(DISTINCT task_id || ' ' || intended_at) FROM runs_run WHERE trigger = 'schedule'")[0][0]
    unhandled = site.query("SELECT count(*) FROM django_q_ormq")[0][0]
    assert fire_times_run <= fired <= fire_times_run + unhandled, (fired, fire_times_run, unhandled)
    print(f"\n{len(wanted)} fire times over {FIRING_MINUTES} minutes, each with exactly one succeeded run")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def resend_rows(site: EmbeddedSite, file_id: int) -> list[tuple]:
    return site.query("SELECT status, error FROM runs_delivery WHERE file_id = ? AND resent_by_id IS NOT NULL", file_id)


def test_a_200_mb_resend_from_the_page_is_queued_at_once_and_sent_by_a_worker(embedded_site):
    """The page only queues the resend: no worker exists when it answers, so the file cannot have been sent
    by the web request; the cluster started afterwards sends it, and the page's live state follows it."""
    site = embedded_site
    outbox = site.var / "outbox"
    outbox.mkdir()
    made = site.step("stored_file", "200", str(outbox))
    port = free_port()
    with open(site.var / "web.log", "wb") as web_log:
        web = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                               cwd=ROOT, env=site.env, stdout=web_log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, web, timeout=30)
        base, browser = f"http://127.0.0.1:{port}", requests.Session()
        browser.get(f"{base}/admin/login/", timeout=10)
        browser.post(f"{base}/admin/login/", timeout=10, data={
            "username": "resender", "password": "resender-pass-1", "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        page = browser.post(f"{base}/admin/courier/files/{made['file']}/resend/", timeout=30,
                            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]}, headers={"Referer": base})
        assert page.status_code == 200 and page.url.endswith(f"/admin/courier/tasks/{made['task']}/#files")
        assert "Resent big.bin: queued for Local folder Acme/outbox (base folder)." in page.text
        assert resend_rows(site, made["file"]) == [("queued", "")] and not (outbox / "big.bin").exists()
        live = browser.get(f"{base}/admin/courier/tasks/{made['task']}/live/", timeout=10).json()
        assert live["resending"] is True and '<span class="status status-queued">queued</span>' in live["files"]

        site.start_cluster()
        wait_for(lambda: resend_rows(site, made["file"])[0][0] not in ("queued", "pending"), "a worker to send the file", timeout=180)
        assert resend_rows(site, made["file"]) == [("sent", "")]
        assert file_sha256(outbox / "big.bin") == made["sha256"]
        assert not list(outbox.glob(".*"))  # no partial file left beside it
        live = browser.get(f"{base}/admin/courier/tasks/{made['task']}/live/", timeout=10).json()
        assert live["resending"] is False and '<span class="status status-sent">sent</span>' in live["files"]
    finally:
        site.stop_clusters()
        stop_process(web, signal.SIGTERM, timeout=10)
    assert "send_resend" in site.log_text() and "database is locked" not in site.log_text()
