"""Database sources over ODBC on real PostgreSQL, MariaDB and SQLite: rows, batches, result sets, timeouts.

There is no SQL Server here: its path is checked through the FreeTDS driver's
load and error mapping, and live only when MSSQL_ODBC names a server.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import zoneinfo

import pyodbc
import pytest
from django.conf import settings

from connections.clients import odbc
from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tasks.models import TaskParameter
from tests import factories
from tests.database_support import csv_of, database, run_query, seed
from tests.servers_common import free_port

pytestmark = pytest.mark.django_db


ROWS = [(1, "Ann"), (2, "Bob, Jr."), (3, "Zoë")]
EXPECTED = 'id,name\n1,Ann\n2,"Bob, Jr."\n3,Zoë\n'


@pytest.mark.parametrize("fixture", ["pg_odbc", "mariadb_odbc", "sqlite_odbc"])
def test_rows_arrive_in_the_file(fixture, request):
    db = request.getfixturevalue(fixture)
    seed(db, "people", ROWS)
    run = run_query(database(db), "SELECT id, name FROM people ORDER BY id")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == EXPECTED
    assert run.rows == 3


@pytest.mark.parametrize(
    ("fixture", "sql"),
    [
        ("pg_odbc", "CREATE TEMP TABLE t (n int); INSERT INTO t VALUES (7); UPDATE t SET n = n + 1; SELECT n FROM t"),
        ("mariadb_odbc", "CREATE TEMPORARY TABLE t (n int); INSERT INTO t VALUES (7); UPDATE t SET n = n + 1; SELECT n FROM t"),
    ],
)
def test_first_result_set_with_columns_is_exported(fixture, sql, request):
    # The INSERT and UPDATE answer with row counts first; those are skipped.
    run = run_query(database(request.getfixturevalue(fixture)), sql)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "n\n8\n"


def test_only_the_first_result_set_is_exported(pg_odbc):
    run = run_query(database(pg_odbc), "SELECT 1 AS first; SELECT 2 AS second")
    assert csv_of(run) == "first\n1\n"


def test_go_batches_run_in_order_in_one_session(pg_odbc):
    sql = (
        "USE somewhere;\n"
        "CREATE TEMP TABLE staged AS SELECT 'GO' AS word, 1 AS n -- GO in a string and a comment stay\n"
        "GO\n"
        "INSERT INTO staged VALUES ('two', 2)\n"
        "go\n"
        "SELECT word, n FROM staged ORDER BY n\n"
    )
    run = run_query(database(pg_odbc), sql)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "word,n\nGO,1\ntwo,2\n"
    assert "3 batches" in "\n".join(run.log_lines.values_list("message", flat=True))


def test_parameters_go_into_session_variables_across_batches(mariadb_odbc):
    conn = database(mariadb_odbc)
    run_sql = "SET @day = '2000-01-01'\nGO\nSELECT @day AS day, @tag AS tag\n"
    task = factories.query_task(factories.project(), conn, "SET @tag = 'x';\n" + run_sql, output_name="p.csv")
    TaskParameter.objects.create(task=task, key="@day", value="'parse(%Y-%m-%d)'")
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    today = run.intended_at.astimezone(zoneinfo.ZoneInfo(task.project.timezone))
    assert csv_of(run) == f"day,tag\n{today:%Y-%m-%d},x\n"


@pytest.mark.parametrize(("fixture", "sql"), [("pg_odbc", "SELECT pg_sleep(5)"), ("mariadb_odbc", "SELECT sleep(5)")])
def test_a_query_past_its_timeout_is_stopped(fixture, sql, request):
    run = run_query(database(request.getfixturevalue(fixture), query_timeout=1), sql)
    assert run.status == RunStatus.FAILED
    assert "was stopped by the query timeout of 1 s" in run.error
    assert run.permanent is False


@pytest.mark.django_db(transaction=True)
def test_live_row_count_while_the_query_runs(pg_odbc, settings):
    """The count is logged on a clock, also while the server has not sent the first row yet."""
    settings.COURIER_FETCH_BATCH = 100
    settings.COURIER_ROWCOUNT_SECONDS = 0.25
    sql = "SELECT n, pg_sleep(CASE WHEN n = 1 THEN 1.5 ELSE 0 END) AS pause FROM generate_series(1, 300) AS n"
    run = run_query(database(pg_odbc), sql)
    assert run.status == RunStatus.SUCCEEDED, run.error
    messages = list(run.log_lines.values_list("message", flat=True))
    counts = [int(m.split()[2]) for m in messages if m.startswith("Query running:")]
    assert counts.count(0) >= 2, messages  # the first row takes 1.5 s; the clock ticks every 0.25 s
    assert counts == sorted(counts)
    assert "The query returned 300 rows." in messages
    assert csv_of(run).splitlines()[-1] == "300,"


def test_live_row_count_between_batches_inside_a_transaction(pg_odbc, settings):
    settings.COURIER_FETCH_BATCH = 100
    settings.COURIER_ROWCOUNT_SECONDS = 0  # every batch, so the test needs no clock
    run = run_query(database(pg_odbc), "SELECT n FROM generate_series(1, 1000) AS n")
    assert run.status == RunStatus.SUCCEEDED, run.error
    messages = run.log_lines.values_list("message", flat=True)
    counts = [int(m.split()[2]) for m in messages if m.startswith("Query running:")]
    assert counts == list(range(100, 1001, 100))


MEMORY_PROBE = """
import re, sys, types
from connections.clients import odbc
# Reset the peak-RSS mark: a forked child starts with its parent's (pytest's).
with open("/proc/self/clear_refs", "w") as marks:
    marks.write("5")
conn = types.SimpleNamespace(odbc=sys.argv[1], dialect="postgresql", login_timeout=10, query_timeout=60, read_only=False)
sql = f"SELECT n, repeat('x', 200) AS pad FROM generate_series(1, {int(sys.argv[2])}) AS n"
rows = []
def sink(columns, batches):
    for batch in batches:
        rows.append(len(batch))  # what a writer does: take the batch, keep nothing
odbc.DatabaseClient(conn).run_query([sql], sink, batch=5000)
with open("/proc/self/status") as status:
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
print(sum(rows), peak_kb // 1024)
"""


def peak_memory_mb(db, rows: int) -> int:
    # A fresh process per measurement: ru_maxrss is a high-water mark.
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, db.odbc, str(rows)], capture_output=True, text=True,
                         check=True, cwd=settings.BASE_DIR).stdout.split()
    assert int(out[0]) == rows
    return int(out[1])


def test_memory_stays_flat_as_the_row_count_grows(pg_odbc):
    # Measured here: buffered (UseDeclareFetch=0) 29 → 68 MB peak; streamed 27 → 28 MB.
    small, large = peak_memory_mb(pg_odbc, 10_000), peak_memory_mb(pg_odbc, 150_000)
    assert large - small < 12, f"{small} MB for 10k rows, {large} MB for 150k rows"


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word (a hung database)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for sock in accepted:
        sock.close()


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        ("postgresql", "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={port};Database=x;Uid=u;Pwd=p;"),
        ("mysql", "Driver={{MariaDB Unicode}};Server=127.0.0.1;Port={port};Uid=u;Pwd=p;"),
        ("mssql", "Driver={{FreeTDS}};Server=127.0.0.1;Port={port};UID=u;PWD=p;TDS_Version=7.4;"),
    ],
)
def test_a_silent_server_is_left_after_the_login_timeout(dialect, template, silent_server):
    driver = template.split("{{")[1].split("}}")[0]
    if driver not in pyodbc.drivers():
        pytest.skip(f"ODBC driver {driver} is not registered")
    conn = factories.connection("database", name=dialect, dialect=dialect, odbc=template.format(port=silent_server), login_timeout=1)
    run = run_query(conn, "SELECT 1")
    assert run.status == RunStatus.FAILED
    assert f"Connecting on Acme/{dialect} was stopped by the login timeout of 1 s" in run.error, run.error
    assert run.permanent is False


def test_streaming_options_are_added_unless_the_string_sets_them():
    assert odbc.streaming_odbc("Driver={PostgreSQL Unicode};", "postgresql", 500).endswith("UseDeclareFetch=1;Fetch=500;")
    assert odbc.streaming_odbc("Driver=x;UseDeclareFetch=0", "postgresql", 500) == "Driver=x;UseDeclareFetch=0"
    mysql = odbc.streaming_odbc("Driver={MariaDB Unicode}", "mysql", 500, login_timeout=7)
    assert mysql.endswith(";CONN_TIMEOUT=7;NO_CACHE=1;FORWARDONLY=1;OPTION=70254592;")
    assert odbc.streaming_odbc("Driver=x;OPTION=3;NO_CACHE=0", "mysql", 500) == "Driver=x;OPTION=3;NO_CACHE=0"
    assert odbc.streaming_odbc("Driver={SQLite3};Database=/x.db", "sqlite", 500) == "Driver={SQLite3};Database=/x.db;StepAPI=1;"
    assert odbc.streaming_odbc("Driver={SQLite3};StepAPI=0", "sqlite", 500) == "Driver={SQLite3};StepAPI=0"


def test_no_result_set_at_all_fails(sqlite_odbc):
    run = run_query(database(sqlite_odbc), "CREATE TABLE only_ddl (n int)")
    assert run.status == RunStatus.FAILED
    assert "no result set" in run.error


# --- SQL Server: FreeTDS without a server ---------------------------------------------


def freetds(server_port: int, **fields):
    if "FreeTDS" not in pyodbc.drivers():
        pytest.skip("ODBC driver FreeTDS not registered (apt-get install tdsodbc)")
    string = f"Driver={{FreeTDS}};Server=127.0.0.1;Port={server_port};Database=db;UID=etl;PWD=Tds-Secret-9;TDS_Version=7.4;"
    return factories.connection("database", name="mssql", dialect="mssql", odbc=string, login_timeout=5, **fields)


def test_freetds_loads_and_a_missing_server_is_a_transient_failure():
    run = run_query(freetds(free_port()), "SELECT 1 AS one")
    assert run.status == RunStatus.FAILED
    assert re.search(r"Connecting on Acme/mssql failed \[08S01\]: .*Unable to connect", run.error), run.error
    assert run.permanent is False
    assert "Tds-Secret-9" not in run.error + "".join(run.log_lines.values_list("message", flat=True))


def test_a_missing_driver_is_a_permanent_failure():
    conn = factories.connection("database", name="nodriver", dialect="mssql", odbc="Driver={No Such Driver};Server=x;")
    run = run_query(conn, "SELECT 1")
    assert run.status == RunStatus.FAILED
    assert run.permanent is True
    assert "No Such Driver" in run.error or "Can't open lib" in run.error or "IM002" in run.error


@pytest.mark.skipif(not os.environ.get("MSSQL_ODBC"), reason="MSSQL_ODBC does not name a SQL Server (none can be had here)")
def test_live_sql_server():
    conn = factories.connection("database", name="live-mssql", dialect="mssql", odbc=os.environ["MSSQL_ODBC"], query_timeout=30)
    sql = (
        "CREATE TABLE #t (n int, word nvarchar(10))\n"
        "INSERT INTO #t VALUES (1, N'GO'), (2, N'Zoë')\n"
        "GO\n"
        "DECLARE @min int = 0\n"
        "SELECT n, word FROM #t WHERE n > @min ORDER BY n\n"
    )
    run = run_query(conn, sql)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "n,word\n1,GO\n2,Zoë\n"
    conn.query_timeout = 1
    conn.save()
    run = run_query(conn, "WAITFOR DELAY '00:00:05'; SELECT 1 AS one", name="timeout")
    assert "query timeout of 1 s" in run.error
