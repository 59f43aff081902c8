"""Destinations against real servers — SFTP (OpenSSH), FTP and FTPS (pyftpdlib), SMB (Samba), local folder.

Each test runs a real query into a file, delivers it, and reads what arrived on
the server's disk: exact bytes, hashes equal to the recorded ones, one
Delivery per file and destination, and no temporary name left behind.
"""

from __future__ import annotations

import os
import pwd

import pytest

from runs.models import Delivery, DeliveryStatus, RunStatus
from tests import factories
from tests.delivery_support import ORDERS_CSV, folder_destination, log_text, md5, orders_task, run_task, sha256
from tests.file_servers import FILE_KINDS, file_connection, mkdirs, put

pytestmark = pytest.mark.django_db

KINDS = [*FILE_KINDS, "folder"]


@pytest.fixture(params=KINDS)
def target(request, tmp_path):
    """(connection, folder on disk that is its base folder) for every destination kind."""
    if request.param == "folder":
        base = tmp_path / "share"
        base.mkdir()
        return factories.connection("folder", name="local", folder=str(base)), base
    return file_connection(request, request.param, tmp_path)


def test_the_file_arrives_byte_for_byte_with_matching_hashes(sqlite_odbc, target):
    conn, disk = target
    mkdirs(disk, "vendor/in")
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    factories.destination(task, conn, folder="vendor/in")
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    arrived = (disk / "vendor" / "in" / "orders.csv").read_bytes()
    assert arrived == ORDERS_CSV
    record = run.files.get()
    assert (record.size, record.md5, record.sha256) == (len(arrived), md5(arrived), sha256(arrived))
    delivery = Delivery.objects.get(run=run)
    assert (delivery.status, delivery.file, delivery.error) == (DeliveryStatus.SENT, record, "")
    assert delivery.at is not None and conn.name in delivery.target
    assert sorted(p.name for p in (disk / "vendor" / "in").iterdir()) == ["orders.csv"]  # no temporary name left


@pytest.mark.parametrize("kind", KINDS)
def test_if_the_file_exists_fail_skip_or_overwrite(sqlite_odbc, request, tmp_path, kind):
    if kind == "folder":
        disk = tmp_path / "share"
        disk.mkdir()
        conn = factories.connection("folder", name="local", folder=str(disk))
    else:
        conn, disk = file_connection(request, kind, tmp_path)
    existing = put(disk, "drop/orders.csv", b"the vendor's copy\n")
    if kind == "smb":
        # Samba lets a login replace only a file it may delete: one it owns, with the mode smbd
        # gives its own files (rwxr--r--), as after an earlier upload by the same account.
        user = pwd.getpwnam(request.getfixturevalue("smb_server").username)
        os.chown(existing, user.pw_uid, user.pw_gid)
        existing.chmod(0o744)
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    destination = factories.destination(task, conn, folder="drop")

    failed = run_task(task)
    assert failed.status == RunStatus.FAILED and failed.error_stage == "delivery"
    assert "already exists" in failed.error and failed.permanent
    assert (disk / "drop" / "orders.csv").read_bytes() == b"the vendor's copy\n"

    destination.if_exists = "skip"
    destination.save()
    skipped = run_task(task)
    assert skipped.status == RunStatus.SUCCEEDED
    assert Delivery.objects.get(run=skipped).status == DeliveryStatus.SKIPPED
    assert (disk / "drop" / "orders.csv").read_bytes() == b"the vendor's copy\n"

    destination.if_exists = "overwrite"
    destination.save()
    replaced = run_task(task)
    assert replaced.status == RunStatus.SUCCEEDED, replaced.error
    assert (disk / "drop" / "orders.csv").read_bytes() == ORDERS_CSV
    assert sorted(p.name for p in (disk / "drop").iterdir()) == ["orders.csv"]


def test_do_not_send_empty_files(sqlite_odbc, tmp_path, sshd):
    conn, disk = file_connection_for_sftp(sshd, tmp_path)
    task = orders_task(sqlite_odbc, sql="select * from orders where id < 0", output_name="empty.csv")
    factories.destination(task, conn, skip_empty=True)
    folder_destination(task, tmp_path / "local")  # this one takes empty files
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert not (disk / "empty.csv").exists()
    assert (tmp_path / "local" / "empty.csv").read_bytes() == b"id,customer,amount,note\n"  # header only: no data rows
    statuses = dict(Delivery.objects.filter(run=run).values_list("destination__kind", "status"))
    assert statuses == {"sftp": DeliveryStatus.SKIPPED, "folder": DeliveryStatus.SENT}
    assert "empty.csv is empty and the destination does not send empty files" in log_text(run)


def file_connection_for_sftp(sshd, tmp_path):
    disk = sshd.root / f"t-{tmp_path.name[-24:]}"
    disk.mkdir()
    disk.chmod(0o777)
    return factories.sftp_connection(sshd, name="sftp-empty", folder=str(disk)), disk


def test_several_destinations_record_one_delivery_each_and_a_failure_does_not_stop_the_others(sqlite_odbc, tmp_path, ftp_server):
    conn, disk = file_connection_for_ftp(ftp_server)
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    factories.destination(task, conn, folder="missing-folder", position=1)  # fails: no such folder on the server
    folder_destination(task, tmp_path / "a", position=2)
    folder_destination(task, tmp_path / "b", name="second", position=3)
    run = run_task(task)

    assert run.status == RunStatus.FAILED and run.error_stage == "delivery"
    assert "1 of 3 deliveries failed" in run.error
    assert (tmp_path / "a" / "orders.csv").read_bytes() == ORDERS_CSV
    assert (tmp_path / "b" / "orders.csv").read_bytes() == ORDERS_CSV
    rows = list(Delivery.objects.filter(run=run).order_by("id").values_list("destination__position", "status"))
    assert rows == [(1, DeliveryStatus.FAILED), (2, DeliveryStatus.SENT), (3, DeliveryStatus.SENT)]
    assert not list(disk.rglob("orders.csv"))


def file_connection_for_ftp(ftp_server):
    from tests.file_servers import ftp_conn

    return ftp_conn(ftp_server, name="ftp-dest"), ftp_server.root


def test_a_local_folder_destination_cannot_leave_its_base_folder(sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    folder_destination(task, tmp_path / "base", folder="../outside")
    run = run_task(task)
    assert run.status == RunStatus.FAILED and run.permanent
    assert "outside the base folder" in run.error or "may not contain “..”" in run.error
    assert not (tmp_path / "outside").exists()
