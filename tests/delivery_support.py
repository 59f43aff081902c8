"""Helpers for the output, delivery, mail and history tests: a real SQLite source and a run to the end."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyodbc
import pytest

from connections.models import Connection
from runs.models import Delivery, Run, RunFile, RunStatus, Trigger
from runs.resend import queue_resend, send_queued
from runs.runner import execute
from runs.state import create_run
from tasks.models import Destination, Task
from tests import factories

ORDERS = [
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(50), amount VARCHAR(10), note VARCHAR(100))",
    "INSERT INTO orders VALUES (1, 'Ann', '10.50', 'plain')",
    "INSERT INTO orders VALUES (2, 'Bob, Jr.', '20.00', 'has \"quotes\"')",
    "INSERT INTO orders VALUES (3, 'Zoë', '0.10', NULL)",
]
ORDERS_SQL = "select id, customer, amount, note from orders order by id"
ORDERS_CSV = (
    b"id,customer,amount,note\n"
    b"1,Ann,10.50,plain\n"
    b'2,"Bob, Jr.",20.00,"has ""quotes"""\n'
    b"3,Zo\xc3\xab,0.10,\n"
)


def sqlite_source(db, statements: list[str] = ORDERS, name: str = "sqlite") -> Connection:
    """Run `statements` in the test's SQLite database and return a Courier connection to it."""
    cnxn = pyodbc.connect(db.odbc)
    for sql in statements:
        cnxn.execute(sql)
    cnxn.commit()
    cnxn.close()
    return factories.connection("database", name=name, dialect=db.dialect, odbc=db.odbc, query_timeout=60)


def orders_task(db, name: str = "orders", sql: str = ORDERS_SQL, **fields) -> Task:
    return factories.query_task(factories.project(), sqlite_source(db), sql, name=name, **fields)


def folder_destination(task: Task, base: Path, folder: str = "", name: str | None = None, **fields) -> Destination:
    base.mkdir(parents=True, exist_ok=True)
    conn = Connection.objects.filter(kind="folder", folder=str(base)).first()
    if conn is None:
        conn = factories.connection("folder", name=name or f"folder-{base.name}", folder=str(base))
    return factories.destination(task, conn, folder=folder, **fields)


def run_task(task: Task, **fields) -> Run:
    run = create_run(task, fields.pop("trigger", Trigger.MANUAL), **fields)
    assert execute(run.pk) is not None
    run.refresh_from_db()
    return run


def stored_orders(db, folder: Path) -> RunFile:
    """The stored orders.csv of a succeeded run that delivered it to `folder`."""
    task = orders_task(db, output_name="orders.csv")
    folder_destination(task, folder)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run.files.get()


def resend(record: RunFile, user) -> list[Delivery]:
    """What the Resend button queues, then sent as a worker sends it (runs.jobs.send_resend); the deliveries as they ended."""
    queued = queue_resend(record, user)
    return send_queued([d.pk for d in queued])


def retry(run: Run) -> Run:
    """The next attempt of a failed run, executed now (as the retry schedule would)."""
    return run_task(run.task, trigger=Trigger.RETRY, retry_of=run, attempt=run.attempt + 1, intended_at=run.intended_at)


def mail_through(smtp_server, settings):
    """Send Django's mail to the aiosmtpd test server (tests/servers_inprocess.py `smtp_server`)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.host, smtp_server.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = smtp_server.username, smtp_server.password
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "courier@example.test"
    settings.COURIER_BASE_URL = "https://courier.example.test/"
    return smtp_server


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def log_text(run: Run) -> str:
    return "\n".join(run.log_lines.values_list("message", flat=True))


@contextmanager
def tmpfs(options: str) -> Iterator[Path]:
    """A small file system of its own (tests run as root), unmounted afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="courier-fs-", dir="/tmp"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True, check=False)
    if done.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


class Polling(threading.Thread):
    """A thread that calls `look()` every half millisecond until it returns True or the `with` block ends."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done = threading.Event()

    def look(self) -> bool:
        raise NotImplementedError

    def run(self) -> None:
        while not self.done.is_set() and not self.look():
            time.sleep(0.0005)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        self.join(timeout=5)
