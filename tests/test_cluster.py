"""Several machines: PostgreSQL as the database, Redis as the broker, real `qcluster` processes.

Each cluster is its own `manage.py qcluster` process under tests.settings_pg,
as on a machine of its own; the helper steps (tests/cluster_helper.py) and
the commands run in further processes. The pytest process itself only reads
the shared PostgreSQL database to wait for results.

Select with `pytest -m cluster`; they also run in the normal suite.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.cluster_support import ROOT, ClusterSite, wait_for
from tests.servers_common import free_port, shared_tmp, stop_process, wait_port

pytestmark = pytest.mark.cluster
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
N_FIRINGS = 60


@dataclass
class PgSite(ClusterSite):
    database: str = ""

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(dbname=self.database, autocommit=True, **PG) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def pg_site() -> Iterator[PgSite]:
    psycopg = pytest.importorskip("psycopg", reason="psycopg (requirements.txt) is needed for PostgreSQL")
    redis = pytest.importorskip("redis")
    try:
        admin = psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG)
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    except (psycopg.Error, redis.RedisError) as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379 are needed: {exc}")
    # Unique names: test sessions may run side by side on one machine.
    database = queue = f"courier_q_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {database}")
    # A throwaway database need not wait for the disk at each commit (the runs write many small rows).
    admin.execute(f"ALTER DATABASE {database} SET synchronous_commit = off")
    var = shared_tmp("courier-q-")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_pg", "COURIER_TEST_PG_DB": database,
           "COURIER_TEST_Q_NAME": queue, "COURIER_TEST_VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"}
    site = PgSite(env=env, var=var, database=database)
    try:
        migrated = site.manage("migrate", "--noinput", timeout=120)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield site
    finally:
        site.stop_clusters()
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
        keys = redis.Redis(host="127.0.0.1", port=6379)
        for key in keys.scan_iter(f"django_q:{queue}:*"):
            keys.delete(key)
        shutil.rmtree(var, ignore_errors=True)


def run_counts(site: PgSite, prefix: str) -> dict[str, int]:
    rows = site.query(
        "SELECT r.status, count(*) FROM runs_run r JOIN tasks_task t ON t.id = r.task_id "
        "JOIN projects_project p ON p.id = t.project_id WHERE p.name LIKE %s GROUP BY r.status", f"{prefix}-%")
    return dict(rows)


def schedules_fired_by(log: Path) -> int:
    return len(re.findall(r"created task \S+ from schedule \[courier:project:", log.read_text(errors="replace")))


def test_two_clusters_turn_n_schedule_firings_into_exactly_n_runs(pg_site, sqlite_odbc):
    setup = pg_site.step("setup_firing", "many", str(N_FIRINGS), sqlite_odbc.odbc)
    assert setup["schedules"] == N_FIRINGS  # every one due now: both clusters' first scheduler pass races for them
    pg_site.start_cluster("a")
    pg_site.start_cluster("b")
    try:
        wait_for(lambda: run_counts(pg_site, "many").get("succeeded", 0) >= N_FIRINGS, f"{N_FIRINGS} succeeded runs", timeout=90)
    finally:
        pg_site.stop_clusters()  # after a clean stop nothing else is in flight

    counts = pg_site.step("counts", "many", setup["due"])
    assert counts["runs"] == counts["intended_due"] == N_FIRINGS
    assert counts["by_status"] == {"succeeded": N_FIRINGS}
    assert counts["tasks_with_runs"] == N_FIRINGS and counts["max_per_task"] == 1
    assert counts["fire_tasks"] == N_FIRINGS
    # One-offs are booked as fired and gone; cron and interval rows re-armed for their next time.
    assert counts["once_fired"] == N_FIRINGS // 3
    assert counts["armed_future"] == N_FIRINGS - N_FIRINGS // 3 and counts["left_due"] == 0
    fired = [schedules_fired_by(log) for _, log in pg_site.clusters]
    assert sum(fired) == N_FIRINGS, fired
    executed = [len(worker_pids(log) & {int(w.rsplit(":", 1)[1]) for w in counts["workers"]}) for _, log in pg_site.clusters]
    assert all(executed), f"workers per cluster that executed runs: {executed}"
    print(f"\nschedules fired per cluster: {fired}; workers that executed runs per cluster: {executed}")


def worker_pids(log: Path) -> set[int]:
    return {int(pid) for pid in re.findall(r"ready for work at (\d+)", log.read_text(errors="replace"))}


def firing_pids(log: Path) -> list[int]:
    """The process of each "created task … from schedule [courier:project:…]" line (the log's second field)."""
    return [int(pid) for pid in re.findall(r"^\S+ \S+ (\d+) .* created task \S+ from schedule \[courier:project:",
                                           log.read_text(errors="replace"), re.MULTILINE)]


def test_with_django_q2s_own_pass_off_the_workers_polls_fire_each_schedule_exactly_once(pg_site, sqlite_odbc):
    """Four workers (two clusters × 2) poll django-q2's scheduler every 0.2 s; their sentinels' 30 s pass is off.

    So every firing comes from a worker's poll (runs/schedulerpoll.py), not
    from the pass a fire time used to wait up to 30 s for: the log names the
    worker process that fired it. The polls race for the same due rows;
    `select_for_update` lets each schedule fire once: one fire_project job
    (django-q2's kept results) and one run per schedule.
    """
    fired_before = pg_site.step("counts", "none", "2000-01-01T00:00:00+00:00")["fire_tasks"]
    setup = pg_site.step("setup_firing", "polled", str(N_FIRINGS), sqlite_odbc.odbc)
    assert setup["schedules"] == N_FIRINGS
    pg_site.clusters.clear()
    polls = {"COURIER_TEST_SENTINEL_SCHEDULER": "off", "COURIER_SCHEDULER_POLL_SECONDS": "0.2"}
    pg_site.start_cluster("poll-a", **polls)
    pg_site.start_cluster("poll-b", **polls)
    try:
        wait_for(lambda: run_counts(pg_site, "polled").get("succeeded", 0) >= N_FIRINGS, f"{N_FIRINGS} succeeded runs", timeout=90)
    finally:
        pg_site.stop_clusters()

    counts = pg_site.step("counts", "polled", setup["due"])
    assert counts["runs"] == counts["intended_due"] == N_FIRINGS and counts["max_per_task"] == 1
    assert counts["by_status"] == {"succeeded": N_FIRINGS}
    assert counts["fire_tasks"] - fired_before == N_FIRINGS
    assert counts["armed_future"] >= N_FIRINGS - N_FIRINGS // 3 and counts["left_due"] == 0
    by_cluster = [(firing_pids(log), worker_pids(log)) for _, log in pg_site.clusters]
    assert sum(len(pids) for pids, _ in by_cluster) == N_FIRINGS
    assert all(set(pids) <= workers for pids, workers in by_cluster), by_cluster
    print(f"\nfirings per worker process: {[sorted(Counter(pids).values()) for pids, _ in by_cluster]}")


def test_worker_killed_mid_run_is_reaped_as_worker_lost_and_retried(pg_site, pg_odbc):
    slow = pg_site.step("setup_slow", pg_odbc.odbc)  # its run is queued for the cluster
    pg_site.clusters.clear()
    pg_site.start_cluster("k")
    try:
        worker = wait_for(lambda: _running_with_heartbeat(pg_site, slow["run"]), "the run to be running and beating")
        os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
        # The next attempt need not sleep.
        pg_site.query("UPDATE tasks_codelocation SET text = 'select 1 as n' WHERE task_id = %s", slow["task"])
        wait_for(lambda: pg_site.query(
            "SELECT 1 FROM runs_run WHERE id = %s AND heartbeat_at < now() - interval '5 seconds'", slow["run"]),
            "the killed run's heartbeat to go stale")

        reaped = pg_site.manage("reap_runs")
        # (On a very slow machine the cluster's own reaper schedule may get there first.)
        assert reaped.returncode == 0, reaped.stderr
        state = pg_site.step("retry_now", str(slow["task"]))
        failed, retry = state["runs"]
        assert failed["id"] == slow["run"] and failed["status"] == "failed"
        assert failed["error"].startswith(f"Worker lost: {worker} gave no sign of life")
        assert (retry["status"], retry["attempt"], retry["retry_of"]) == ("retry_scheduled", 2, failed["id"])
        assert retry["schedule"] == {"name": f"courier:retry:{retry['id']}", "func": "runs.jobs.start_retry", "args": f"({retry['id']},)"}
        wait_for(lambda: pg_site.query("SELECT 1 FROM runs_run WHERE id = %s AND status = 'succeeded'", retry["id"]),
                 "the retry to succeed")
    finally:
        pg_site.stop_clusters()


def _running_with_heartbeat(site: PgSite, run_id: int) -> str | None:
    """The run's worker once it runs and its heartbeat has moved on while the query sleeps."""
    rows = site.query("SELECT worker FROM runs_run WHERE id = %s AND status = 'running' "
                      "AND heartbeat_at > started_at + interval '1 second'", run_id)
    return rows[0][0] if rows else None


def test_pause_survives_a_restart(pg_site, sqlite_odbc):
    assert pg_site.manage("scheduler", "pause").returncode == 0
    try:
        # Every later step is a new process, as after a restart of every machine.
        status = pg_site.manage("scheduler", "status")
        assert status.stdout.startswith("Scheduler: PAUSED since "), status.stdout + status.stderr
        result = pg_site.step("fire_while_paused", sqlite_odbc.odbc)
    finally:
        pg_site.manage("scheduler", "resume")
    assert result == {"paused": "paused: nothing started", "runs_while_paused": 0, "runs_after_resume": 1}


def _seconds_into_the_minute(low: int, high: int) -> None:
    """Wait until the clock is `low`–`high` seconds past a minute (at most a minute)."""
    while not low <= time.time() % 60 < high:
        time.sleep(0.2)


def test_a_downtime_over_three_fire_times_records_three_missed_runs_and_each_policy_runs_its_share_once(pg_site, sqlite_odbc):
    """Every-minute crons after a downtime over three fire times: 3 "missed" records each; none/latest/all run 0/1/3.

    The cluster is started 36–40 s past a minute, so the last missed time is
    over COURIER_MISSED_AFTER_SECONDS (35 s) old when its scheduler passes,
    and the next one not yet due. Then it restarts twice; nothing runs twice.
    """
    _seconds_into_the_minute(36, 40)
    times = pg_site.step("setup_missed", sqlite_odbc.odbc)["times"]
    joined = ",".join(times)
    pg_site.clusters.clear()
    try:
        pg_site.start_cluster("m1")
        wait_for(lambda: pg_site.step("missed_state", joined)["all"]["catch_ups"], "the first catch-up run of policy all")
        pg_site.stop_clusters()  # restart 1, in the middle of the catch-ups
        pg_site.start_cluster("m2")
        all_done = [[t, "succeeded"] for t in times]
        wait_for(lambda: pg_site.step("missed_state", joined)["all"]["catch_ups"] == all_done, "the three catch-up runs of policy all", timeout=90)
        pg_site.stop_clusters()  # restart 2: its first scheduler pass fires again whatever is due
        pg_site.start_cluster("m3")
        time.sleep(8)
    finally:
        pg_site.stop_clusters()
    state = pg_site.step("missed_state", joined)
    for policy in ("none", "latest", "all", "window"):
        assert state[policy]["missed"] == times, policy
        assert state[policy]["late_times_started"] == 0, policy  # never started as if on time
    assert state["none"]["catch_ups"] == []
    assert state["latest"]["catch_ups"] == [[times[-1], "succeeded"]]
    assert state["all"]["catch_ups"] == [[t, "succeeded"] for t in times]
    assert state["window"]["catch_ups"] == [[times[-1], "succeeded"]]  # a 1-minute window: only the last one
    assert state["most_per_fire_time"] == 1


def _worker_of(run: dict) -> int:
    return int(run["worker"].rsplit(":", 1)[1])


def test_a_file_made_on_one_machine_is_downloaded_through_the_web_and_resent_by_another(pg_site, sqlite_odbc):
    """Web, and two clusters as machines of their own (each its own COURIER_WORK_DIR), sharing one storage folder.

    The second machine runs the task; its upload fails (a file of that name
    is in the way, and the task does not overwrite). The web process serves the stored file; the first machine,
    which never saw the run, resends the stored file from the shared storage
    as the retry (a redelivery).
    """
    outbox = pg_site.var / "outbox"
    (outbox / "in").mkdir(parents=True)
    (outbox / "in" / "two.csv").write_text("in the way\n")
    setup = pg_site.step("setup_shared", sqlite_odbc.odbc, str(outbox))
    port = free_port()
    web_log = open(pg_site.var / "web.log", "wb")
    web = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                           cwd=ROOT, env={**pg_site.env, "COURIER_WORK_DIR": str(pg_site.var / "work-web")},
                           stdout=web_log, stderr=subprocess.STDOUT)
    pg_site.clusters.clear()
    try:
        pg_site.start_cluster("second", COURIER_WORK_DIR=str(pg_site.var / "work-second"))
        state = wait_for(lambda: (s := pg_site.step("shared_state", str(setup["task"])))["runs"][-1]["status"] == "retry_scheduled" and s,
                         "the run to fail its upload on the second machine")
        pg_site.stop_clusters()
        made, retry = state["runs"]
        assert made["status"] == "failed" and "already exists" in made["error"]
        assert _worker_of(made) in worker_pids(pg_site.clusters[0][1])
        [stored] = made["files"]
        assert (pg_site.var / "storage" / stored["path"]).is_file()
        assert not list((pg_site.var / "work-second").glob("run-*"))  # its work folder is private and cleaned

        wait_port(port, web, timeout=30)
        site = requests.Session()
        login = f"http://127.0.0.1:{port}/admin/login/"
        site.get(login, timeout=10)
        site.post(login, data={"username": "webadmin", "password": "webadmin-pass-1",
                               "csrfmiddlewaretoken": site.cookies["csrftoken"], "next": "/admin/"}, timeout=10)
        download = site.get(f"http://127.0.0.1:{port}/admin/courier/files/{stored['id']}/download/", timeout=10)
        assert download.status_code == 200 and download.content == b"n\n1\n2\n"
        assert hashlib.sha256(download.content).hexdigest() == stored["sha256"]

        (outbox / "in" / "two.csv").unlink()
        pg_site.clusters.clear()
        pg_site.step("retry_now", str(setup["task"]))  # the retry's delay is over: its schedule is queued
        pg_site.start_cluster("first", COURIER_WORK_DIR=str(pg_site.var / "work-first"))
        state = wait_for(lambda: (s := pg_site.step("shared_state", str(setup["task"])))["runs"][-1]["status"] == "succeeded" and s,
                         "the first machine to resend the stored file")
    finally:
        pg_site.stop_clusters()
        stop_process(web, signal.SIGTERM, timeout=10)
        web_log.close()
    resent = state["runs"][-1]
    assert resent["id"] == retry["id"] and _worker_of(resent) in worker_pids(pg_site.clusters[0][1])
    assert resent["deliveries"] == [["sent", stored["name"]]]
    assert (outbox / "in" / stored["name"]).read_bytes() == download.content
