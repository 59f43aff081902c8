"""Page cost at size: SQL queries and median server time of the main pages.

    .venv/bin/python bench/pages.py [--tasks 10000] [--runs 1000000] [--log-lines 5000000] [--repeat 7] [--keep]

Makes a throwaway PostgreSQL database on the machine's server (127.0.0.1:5432,
user postgres, trust auth), migrates it and fills it in bulk: projects (one
per 20 tasks, every-day cron, owners spread over 20 users, some owned by the
measuring superuser), tasks with their inline query, runs spread evenly over
the tasks (hourly, oldest first, 10 % failed, the latest run of some tasks
failed or running), log lines spread evenly over the runs, and one stored
file per succeeded run. Runs, log lines and files are written with
`INSERT … SELECT … generate_series` in the database itself.

Each page is then fetched with Django's test Client as a logged-in superuser
(in this process: the time is the server's time to answer, without a network
or a browser). The first fetch warms caches and is not counted; the SQL
queries of the next are counted with CaptureQueriesContext; the median of
`--repeat` fetches is reported. The database is dropped at the end unless
`--keep` (a later `--reuse` skips the filling).
Prints `RESULT name=value` lines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, load  # noqa: E402

DB = "courier_bench_pages"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
TASKS_PER_PROJECT = 20
OWNERS = 20
TARGET_QUERIES = 12
TARGET_MS = 200


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql)


def database_exists() -> bool:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone() is not None


def setup_django(var: Path) -> None:
    """tests.settings_pg: PostgreSQL named by the environment (its Redis broker is not used here)."""
    # No developer .env (it may set DEBUG, which logs every query and slows every page).
    os.environ.update(COURIER_TEST_PG_DB=DB, COURIER_TEST_Q_NAME="bench-pages", COURIER_TEST_VAR_DIR=str(var),
                      DJANGO_SETTINGS_MODULE="tests.settings_pg", COURIER_ENV_FILE="/dev/null", DEBUG="false")
    import django

    django.setup()
    from django.conf import settings

    settings.LOGGING_CONFIG = None
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets the test Client's "testserver" host in


# --------------------------------------------------------------------------
# Filling the database
# --------------------------------------------------------------------------

def fill(tasks: int, runs: int, log_lines: int) -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    superuser, owners = make_users()
    projects = make_projects(tasks, owners, superuser)
    make_tasks(tasks, projects)
    print(f"  users, {len(projects)} projects, {tasks:,} tasks: {time.perf_counter() - started:.0f} s", flush=True)
    per_task = max(1, runs // tasks)
    timed(f"{per_task * tasks:,} runs", RUNS_SQL, per_task=per_task)
    per_run = max(1, log_lines // (per_task * tasks))
    timed(f"{per_run * per_task * tasks:,} log lines", LOG_SQL, per_run=per_run)
    timed("stored files of succeeded runs", FILES_SQL)
    fill_latest_runs()
    timed("VACUUM ANALYZE", "VACUUM ANALYZE")


def fill_latest_runs() -> None:
    """The runs went in by SQL, past runs/state.py: give each task its LatestRun row as the migration would."""
    from runs.state import refresh_latest

    started = time.perf_counter()
    rows = refresh_latest()
    print(f"  latest run of {rows:,} tasks: {time.perf_counter() - started:.0f} s", flush=True)


def migrate_kept() -> None:
    """A database kept by an older checkout: apply the newer migrations (timed: they run at this size)."""
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=1)
    print(f"  migrate: {time.perf_counter() - started:.1f} s", flush=True)


def make_users():
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    superuser = users.create_superuser("bench", "bench@example.test", "bench-password")
    owners = [users.create_user(f"owner{i:02d}") for i in range(OWNERS)]
    return superuser, owners


def make_projects(tasks: int, owners: list, superuser) -> list:
    from projects.models import Project

    count = max(1, tasks // TASKS_PER_PROJECT)
    people = [superuser, *owners]
    # Saved one by one, as the admin does: each arms its django-q2 schedule.
    return [Project.objects.create(name=f"Project {i:04d}", owner=people[i % len(people)], cron=f"{i % 60} {i % 24} * * *")
            for i in range(count)]


def make_tasks(tasks: int, projects: list) -> None:
    from tasks.models import CodeLocation, CodeRole, Task
    from tests import factories

    conn = factories.connection("database", name="warehouse", dialect="postgresql",
                                odbc="Driver={PostgreSQL Unicode};Server=db;Database=dw;Uid=u;Pwd=secret;")
    made = Task.objects.bulk_create([
        Task(project=projects[i % len(projects)], name=f"task-{i:05d}", source_kind="database", source_connection=conn,
             output_type="csv", output_name="export_%Y%m%d.csv", enabled=i % 10 != 0)
        for i in range(tasks)
    ], batch_size=2000)
    CodeLocation.objects.bulk_create([
        CodeLocation(task=task, role=CodeRole.SOURCE, location="inline", text=f"select * from orders where id > {task.pk}")
        for task in made
    ], batch_size=2000)


def timed(label: str, sql: str, **params) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    print(f"  {label}: {time.perf_counter() - started:.0f} s", flush=True)


# Hourly runs, oldest first (ids grow with time across all tasks). Of the
# latest run of each task, 5 % failed and 1 % is still running.
RUNS_SQL = """
INSERT INTO runs_run (status, trigger, attempt, intended_at, due_at, queued_at, started_at, finished_at, heartbeat_at,
                      worker, rows, error_stage, error, permanent, task_id, waiting_for, catch_up_planned, guard_report, failure_alerted)
SELECT s.status, 'schedule', 1, s.at, s.at, s.at, s.at,
       CASE WHEN s.status = 'running' THEN NULL ELSE s.at + (5 + s.g %% 7) * interval '1 second' END,
       s.at + interval '5 seconds', 'bench-host:1234', CASE WHEN s.status = 'succeeded' THEN s.g * 10 END,
       CASE WHEN s.status = 'failed' THEN 'source' ELSE '' END,
       CASE WHEN s.status = 'failed' THEN 'The query on Acme/warehouse failed [08001]: could not connect to server.' ELSE '' END,
       false, s.task_id, '', false, '', false
FROM (
    SELECT g, t.id AS task_id, now() - (%(per_task)s - g) * interval '1 hour' AS at,
           CASE WHEN g = %(per_task)s AND t.id %% 100 = 7 THEN 'running'
                WHEN g = %(per_task)s AND t.id %% 20 = 3 THEN 'failed'
                WHEN g < %(per_task)s AND (t.id + g) %% 10 = 0 THEN 'failed'
                ELSE 'succeeded' END AS status
    FROM generate_series(1, %(per_task)s) AS g CROSS JOIN tasks_task AS t
    ORDER BY g, t.id
) AS s
"""

LOG_SQL = """
INSERT INTO runs_runlog (at, stage, level, message, run_id)
SELECT r.started_at + k * interval '1 second',
       (ARRAY['claim', 'parameters', 'source', 'output', 'finish'])[1 + (k - 1) %% 5], 'info',
       'Line ' || k || ' of run ' || r.id || ': 12345 rows so far, nothing to worry about.', r.id
FROM runs_run AS r CROSS JOIN generate_series(1, %(per_run)s) AS k
ORDER BY r.id, k
"""

FILES_SQL = """
INSERT INTO runs_runfile (name, size, rows, md5, sha256, stored, created_at, run_id)
SELECT 'export_' || to_char(r.started_at, 'YYYYMMDD_HH24') || '.csv', 123456, r.rows, md5(r.id::text),
       md5(r.id::text) || md5(r.task_id::text), 'runs/' || r.task_id || '/' || r.id || '/export.csv', r.finished_at, r.id
FROM runs_run AS r WHERE r.status = 'succeeded' ORDER BY r.id
"""


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

def pages() -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from runs.models import Run
    from tasks.models import Task

    superuser = get_user_model().objects.get(username="bench")
    # A task of the superuser's own with a full history.
    mine = list(Task.objects.filter(project__owner=superuser).order_by("id").values_list("pk", "project_id")[:50])
    task, project = mine[len(mine) // 2]
    errored = Run.objects.filter(status="failed").order_by("-id").values_list("task_id", flat=True).first()
    return {
        "all_tasks": reverse("courier:task_list"),
        # "-last_run" names no column, so the list keeps its own order (kept as measured before);
        # "-last_run_at" sorts by the latest run's time.
        "all_tasks_filtered": reverse("courier:task_list") + "?status=failed&enabled=true&sort=-last_run&page=2",
        "all_tasks_filtered_sorted": reverse("courier:task_list") + "?status=failed&enabled=true&sort=-last_run_at&page=2",
        "my_tasks": reverse("courier:my_tasks"),
        "task_details": reverse("courier:task_detail", args=[task]),
        "task_details_errored": reverse("courier:task_detail", args=[errored]),
        # What Task Details' live updates fetch when something changed (unchanged, the answer is an empty 304).
        "task_live": reverse("courier:task_live", args=[task]),
        "project_details": reverse("courier:project_detail", args=[project]),
        "dashboard": reverse("courier:dashboard"),
    }


def measure(urls: dict[str, str], repeat: int) -> dict[str, tuple[int, float]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    results = {}
    for name, url in urls.items():
        first = client.get(url)  # warms the content-type, permission and template caches
        if first.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {first.status_code}")
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries = list(captured.captured_queries)  # a view of the connection's log, which the next request clears
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        slowest = max(queries, key=lambda q: float(q["time"]))
        results[name] = (len(queries), statistics.median(times))
        print(f"{name:22} {len(queries):3} queries, median {statistics.median(times):7.1f} ms "
              f"(min {min(times):.1f}, max {max(times):.1f}; slowest query {float(slowest['time']) * 1000:.0f} ms; load {load()})",
              flush=True)
        if float(slowest["time"]) * 1000 > TARGET_MS / 3:
            print(f"    slowest SQL: {slowest['sql'][:600]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--log-lines", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure a database kept by --keep, without filling")
    args = parser.parse_args()
    print(describe_machine())
    var = Path(tempfile.mkdtemp(prefix="courier-bench-pages-"))
    reuse = args.reuse and database_exists()
    if not reuse:
        admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin_sql(f"CREATE DATABASE {DB}")
        admin_sql(f"ALTER DATABASE {DB} SET synchronous_commit = off")  # a throwaway database
    try:
        setup_django(var)
        if not reuse:
            print(f"filling {DB}: {args.tasks:,} tasks, {args.runs:,} runs, {args.log_lines:,} log lines")
            fill(args.tasks, args.runs, args.log_lines)
        else:
            migrate_kept()
        results = measure(pages(), args.repeat)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(var, ignore_errors=True)
        if not args.keep:
            admin_sql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    for name, (queries, ms) in results.items():
        print(f"RESULT {name}_queries={queries}")
        print(f"RESULT {name}_median_ms={ms:.0f}")
    over = [name for name, (queries, ms) in results.items() if queries > TARGET_QUERIES or ms > TARGET_MS]
    print(f"pages over {TARGET_QUERIES} queries or {TARGET_MS} ms: {', '.join(over) or 'none'}")


if __name__ == "__main__":
    main()
