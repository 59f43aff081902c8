"""One deadline per run: a query that never ends and a transfer that stalls both stop at the task's timeout.

A task's timeout counts in minutes; here a minute lasts a few seconds
(COURIER_TIMEOUT_MINUTE_SECONDS), so a 1-minute task stops a few seconds
after its claim. The connection's own query timeout is an hour: only the
task's deadline can stop these runs. Each stop is checked where it counts —
the query gone from the server, the upload ended — and within the deadline
plus a few seconds.
"""

from __future__ import annotations

import gc
import secrets
import socket
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pyodbc
import pytest

from runs.models import Delivery, DeliveryStatus, Run, RunStatus
from runs.runner import execute
from runs.state import create_run
from tests import factories
from tests.file_servers import smb_conn
from tests.servers_common import HOST
from tests.servers_inprocess import _pyftpdlib, _serve_ftp
from tests.servers_odbc import MARIADB_ADMIN, PG_ADMIN

pytestmark = pytest.mark.django_db
MINUTE = 4.0  # seconds in a "minute" of the task timeout, in these tests
GRACE = 10.0  # the most a run may take past its deadline


@pytest.fixture(autouse=True)
def short_minutes(settings):
    settings.COURIER_TIMEOUT_MINUTE_SECONDS = MINUTE


def timed_run(task) -> tuple[Run, float]:
    run = create_run(task, "manual")
    began = time.monotonic()
    execute(run.pk)
    took = time.monotonic() - began
    run.refresh_from_db()
    return run, took


# --- queries ------------------------------------------------------------------------------------

# What is still running on the server, seen from an administrator's session.
SERVER_QUERIES = {
    "postgresql": (PG_ADMIN, "SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"),
    "mysql": (MARIADB_ADMIN, "SELECT info FROM information_schema.processlist WHERE id <> connection_id() AND info IS NOT NULL"),
}
NEVER_ENDING = {
    "postgresql": "SELECT pg_sleep(86400) AS {marker}",
    "mysql": "SELECT SLEEP(86400) AS {marker}",
    # SQLite has no sleep: a recursive query that counts for ever (the driver ignores ODBC's query timeout).
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS {marker} FROM c",
}


def running_on_server(dialect: str, marker: str) -> list[str]:
    if dialect not in SERVER_QUERIES:
        return []
    admin, sql = SERVER_QUERIES[dialect]
    with closing(pyodbc.connect(admin, autocommit=True, timeout=5)) as cnxn:
        return [row[0] for row in cnxn.execute(sql).fetchall() if marker in (row[0] or "")]


@pytest.mark.parametrize("fixture", ["pg_odbc", "mariadb_odbc", "sqlite_odbc"])
def test_a_never_ending_query_stops_at_the_task_timeout_and_is_gone_from_the_server(fixture, request):
    db = request.getfixturevalue(fixture)
    marker = f"courier_{secrets.token_hex(6)}"
    conn = factories.connection("database", name=db.dialect, dialect=db.dialect, odbc=db.odbc, query_timeout=3600)
    task = factories.query_task(factories.project(), conn, NEVER_ENDING[db.dialect].format(marker=marker), timeout_minutes=1)
    seen_running = []
    watcher = threading.Timer(MINUTE / 2, lambda: seen_running.extend(running_on_server(db.dialect, marker)))
    watcher.start()

    run, took = timed_run(task)

    watcher.join()
    assert run.status == RunStatus.FAILED and run.error_stage == "source" and not run.permanent
    assert run.error == f"The query on Acme/{db.dialect} was stopped by the task timeout of 1 minute in the source stage."
    assert MINUTE <= took < MINUTE + GRACE, took
    if db.dialect in SERVER_QUERIES:
        assert seen_running, "the query was not seen running on the server before the deadline"
        assert running_on_server(db.dialect, marker) == []


def test_sqlite_is_held_to_the_connections_query_timeout_which_its_driver_ignores(sqlite_odbc, settings):
    settings.COURIER_TIMEOUT_MINUTE_SECONDS = 60
    conn = factories.connection("database", name="sqlite", dialect="sqlite", odbc=sqlite_odbc.odbc, query_timeout=2)
    task = factories.query_task(factories.project(), conn, NEVER_ENDING["sqlite"].format(marker="n"))
    run, took = timed_run(task)
    assert run.status == RunStatus.FAILED and not run.permanent
    assert run.error == "The query on Acme/sqlite was stopped by the query timeout of 2 s set on the connection."
    assert 2 <= took < 2 + GRACE, took


# --- transfers to a server that stops reading -----------------------------------------------------------

# Enough data that the upload is still going when the server stops reading (buffers hold a few MB).
BIG_ROWS = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 200000) SELECT n, hex(randomblob(60)) AS pad FROM s"


def big_upload_task(sqlite_odbc):
    source = factories.connection("database", name="rows", dialect="sqlite", odbc=sqlite_odbc.odbc, query_timeout=60)
    return factories.query_task(factories.project(), source, BIG_ROWS, name="big", output_name="big.csv", timeout_minutes=1)


class StallingRelay:
    """A TCP relay to a real server that stops reading what the client sends once `after` bytes went through."""

    def __init__(self, port: int, after: int) -> None:
        self.port, self.after, self.passed = port, after, 0
        self.listener = socket.create_server((HOST, 0))
        self.address = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        server = socket.create_connection((HOST, self.port))
        self.sockets += [client, server]
        threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        try:
            while not self.stop.is_set():
                if counted and self.passed >= self.after:
                    self.stop.wait()  # stalled: nothing more is read from the client
                    return
                data = source.recv(65536)
                if not data:
                    return
                target.sendall(data)
                if counted:
                    self.passed += len(data)
        except OSError:
            return

    def close(self) -> None:
        self.stop.set()
        for sock in [self.listener, *self.sockets]:
            sock.close()


def assert_stopped_in_delivery(run: Run, took: float) -> None:
    assert run.status == RunStatus.FAILED and run.error_stage == "delivery" and not run.permanent
    delivery = Delivery.objects.get(run=run)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error == f"The upload of big.csv to {delivery.target} was stopped by the task timeout of 1 minute."
    assert run.error == f"1 of 1 deliveries failed; first: {delivery.error[:-1]} in the delivery stage."
    assert MINUTE <= took < MINUTE + GRACE, took


STALL_AFTER = 1024 * 1024


def upload_through_stalling_relay(server, sqlite_odbc, tmp_path, connection) -> Path:
    """Run the big upload to `server` through a relay that stalls; returns the destination folder on disk."""
    relay = StallingRelay(server.port, after=STALL_AFTER)
    try:
        task = big_upload_task(sqlite_odbc)
        folder = server.root / f"stall-{tmp_path.name[-20:]}"
        folder.mkdir()
        folder.chmod(0o777)
        factories.destination(task, connection(server, port=relay.address, folder=folder))
        run, took = timed_run(task)
    finally:
        relay.close()
    assert relay.passed >= STALL_AFTER, "the upload never reached the stall"
    assert_stopped_in_delivery(run, took)
    return folder


def test_an_sftp_upload_to_a_server_that_stops_reading_ends_at_the_deadline(sshd, sqlite_odbc, tmp_path, monkeypatch):
    def connection(server, port, folder):
        return factories.sftp_connection(server, port=port, folder=str(folder))

    # Nothing of the cut session may fail when collected (paramiko's file object tried to close itself once
    # more over the shut session: an error in whichever test was running then).
    failed_finalizers = []
    monkeypatch.setattr(sys, "unraisablehook", failed_finalizers.append)
    folder = upload_through_stalling_relay(sshd, sqlite_odbc, tmp_path, connection)
    assert not (folder / "big.csv").exists()
    gc.collect()
    assert [(type(f.exc_value).__name__, repr(f.object)) for f in failed_finalizers] == []


def test_an_smb_upload_to_a_server_that_stops_reading_ends_at_the_deadline(smb_server, sqlite_odbc, tmp_path):
    def connection(server, port, folder):
        return smb_conn(server, port=port, folder=folder.name)

    folder = upload_through_stalling_relay(smb_server, sqlite_odbc, tmp_path, connection)
    assert not (folder / "big.csv").exists()


@pytest.fixture
def stalling_ftp_server(tmp_path):
    """A real FTP server whose data connections stop reading an upload after 1 MB."""
    stalled = []

    class StallingDataChannel(_pyftpdlib().handlers.DTPHandler):
        def handle_read(self):
            super().handle_read()
            if self.tot_bytes_received >= 1024 * 1024 and self not in stalled:
                stalled.append(self)
                self.del_channel()  # no longer read by the server's loop: the client's sends back up

        handle_read_event = handle_read  # what the server's loop calls

    server = _serve_ftp(_pyftpdlib().handlers.FTPHandler, tmp_path / "ftp", dtp_handler=StallingDataChannel)
    yield next(server), stalled
    for channel in stalled:
        channel.socket.close()
    next(server, None)


def test_an_ftp_upload_to_a_server_that_stops_reading_ends_at_the_deadline(stalling_ftp_server, sqlite_odbc):
    ftp, stalled = stalling_ftp_server
    task = big_upload_task(sqlite_odbc)
    conn = factories.connection("ftp", name="ftp", host=ftp.host, port=ftp.port, username=ftp.username, password=ftp.password)
    factories.destination(task, conn)
    run, took = timed_run(task)
    assert stalled, "the upload never reached the stall"
    assert_stopped_in_delivery(run, took)
    assert not (ftp.root / "big.csv").exists()
