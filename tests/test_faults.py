"""Faults (SPEC §4, §10): the outcome is always recorded, a retry follows where it can help, nothing is half-written.

Covered elsewhere, and not repeated here:

- the SFTP server cut off in the middle of an upload — no partial file under
  the final name, and the retry sends the file exactly once:
  tests/test_delivery_atomic.py (test_an_sftp_upload_cut_mid_way_never_shows_a_partial_file_and_the_retry_sends_it_whole),
  and a local folder that fills up mid-copy in the same file;
- a worker killed in the middle of a run — reaped as “worker lost” and
  retried: tests/test_cluster.py (test_worker_killed_mid_run_is_reaped_as_worker_lost_and_retried,
  real qcluster processes and SIGKILL) and tests/test_operations.py (the reaper's rules);
- a success mail that cannot be sent: tests/test_notify.py (test_a_mail_server_that_is_down_costs_the_mail_not_the_run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_q.models import Schedule

from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunFile, RunStatus
from runs.runner import execute
from tasks.models import Notification
from tests import factories
from tests.delivery_support import (
    ORDERS,
    folder_destination,
    orders_task,
    run_task,
    sqlite_source,
    tmpfs,
)
from tests.servers_common import free_port

pytestmark = pytest.mark.django_db


def mariadb_task(db, port: int, **fields):
    odbc = (f"Driver={{MariaDB Unicode}};Server=127.0.0.1;Port={port};Database={db.name};Uid={db.user};Pwd={db.password};")
    conn = factories.connection("database", name="maria", dialect="mysql", odbc=odbc, login_timeout=5)
    return factories.query_task(factories.project(), conn, "SELECT 42 AS answer", name="answer", **fields)


def test_the_source_database_down_at_the_start_is_a_transient_failure_and_the_retry_gets_through(mariadb_odbc, tmp_path):
    down = free_port()
    task = mariadb_task(mariadb_odbc, down, retry_max=2, retry_delay_minutes=10)
    folder_destination(task, tmp_path / "out")

    first = run_task(task)
    assert (first.status, first.error_stage, first.permanent) == (RunStatus.FAILED, "source", False)
    assert first.error.startswith("Connecting on Acme/maria failed [HY000]: [ma-3.1.15]Can't connect to server on '127.0.0.1'")
    retry = Run.objects.get(retry_of=first)
    assert (retry.status, retry.attempt) == (RunStatus.RETRY_SCHEDULED, 2)
    assert Schedule.objects.filter(pk=retry.schedule_id, func="runs.jobs.start_retry").exists()
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")

    # The database is back (the connection now reaches it): the retry, run when its schedule fires, delivers.
    conn = task.source_connection
    conn.odbc = conn.odbc.replace(f"Port={down};", "Port=3306;")
    conn.save()
    done = execute(retry.pk)
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert (tmp_path / "out" / "answer.csv").read_bytes() == b"answer\n42\n"


@pytest.fixture
def smtp_down(settings):
    """A mail server that is not there: its port is closed."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 5
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


def test_with_smtp_down_the_outcome_is_recorded_and_the_retry_still_happens(sqlite_odbc, smtp_down):
    task = orders_task(sqlite_odbc, sql="select * from missing_yet", retry_max=1, retry_on_every_failure=True)
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test")

    first = run_task(task)
    assert first.status == RunStatus.FAILED and "no such table: missing_yet" in first.error
    retry = Run.objects.get(retry_of=first)
    assert retry.status == RunStatus.RETRY_SCHEDULED  # the mail server plays no part in that

    last = execute(retry.pk)
    last.refresh_from_db()
    assert last.status == RunStatus.FAILED and "no such table: missing_yet" in last.error  # the outcome stands
    mail = Delivery.objects.get(run=last, kind=DeliveryKind.EMAIL)
    assert mail.status == DeliveryStatus.FAILED and "Connection refused" in mail.error
    assert last.log_lines.filter(stage="notify", level="error", message__contains="could not be sent").exists()
    assert last.finished_at is not None and last.log_lines.filter(stage="finish").exists()


@pytest.fixture
def read_only_storage(settings) -> Iterator[Path]:
    """Courier's file storage on a file system mounted read only: even root cannot write there."""
    with tmpfs("size=1m,ro") as folder:
        _point_storage_at(settings, folder)
        yield folder


@pytest.fixture
def tiny_storage(settings) -> Iterator[Path]:
    """Courier's file storage on a 64 KiB file system: a larger file fails part way (ENOSPC)."""
    with tmpfs("size=64k") as folder:
        _point_storage_at(settings, folder)
        yield folder


def _point_storage_at(settings, folder: Path) -> None:
    # Django resets its default storage when this setting changes.
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": {"location": str(folder)}}}


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_storage_folder_that_is_not_writable_fails_the_run_clearly_before_anything_is_sent(sqlite_odbc, read_only_storage, tmp_path):
    task = orders_task(sqlite_odbc, retry_max=1)
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert (run.status, run.error_stage, run.permanent) == (RunStatus.FAILED, "output", False)
    assert run.error == "Cannot keep orders.csv in Courier's file storage: Read-only file system."
    assert not RunFile.objects.filter(run=run).exists()
    assert files_in(read_only_storage) == []
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []  # not sent without a kept copy
    assert Run.objects.get(retry_of=run).status == RunStatus.RETRY_SCHEDULED


def test_a_storage_that_fills_up_mid_file_keeps_nothing_half_written(sqlite_odbc, tiny_storage, tmp_path):
    rows = [f"INSERT INTO orders VALUES ({i}, 'customer {i}', '{i}.00', '{'x' * 200}')" for i in range(10, 1010)]
    conn = sqlite_source(sqlite_odbc, ORDERS + rows)
    task = factories.query_task(factories.project(), conn, "select * from orders", name="orders")
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert (run.status, run.error_stage) == (RunStatus.FAILED, "output")
    assert run.error == "Cannot keep orders.csv in Courier's file storage: No space left on device."
    assert files_in(tiny_storage) == []  # no partial copy kept under any name
    assert not RunFile.objects.filter(run=run).exists()
