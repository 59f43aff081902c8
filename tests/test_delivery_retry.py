"""A retry after a delivery failure sends only what did not arrive, from the stored files, without re-running the query."""

from __future__ import annotations

import pyodbc
import pytest

from runs.models import Delivery, DeliveryStatus, RunStatus
from runs.pipeline.redelivery import output_files, source_run
from tests import factories
from tests.delivery_support import ORDERS_CSV, folder_destination, log_text, orders_task, retry, run_task, sha256
from tests.file_servers import ftp_conn, mkdirs

pytestmark = pytest.mark.django_db


@pytest.fixture
def half_delivered(sqlite_odbc, tmp_path, ftp_server):
    """A run whose file reached a local folder but not the FTP server (its folder is missing)."""
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    folder_destination(task, tmp_path / "local", position=1)
    factories.destination(task, ftp_conn(ftp_server), folder="inbox", position=2)
    run = run_task(task)
    assert run.status == RunStatus.FAILED and run.error_stage == "delivery"
    assert (tmp_path / "local" / "orders.csv").read_bytes() == ORDERS_CSV
    return run


def test_only_the_failed_delivery_is_repeated_with_the_stored_bytes(half_delivered, sqlite_odbc, tmp_path, ftp_server):
    # The data changes before the retry: re-running the query would send four rows.
    cnxn = pyodbc.connect(sqlite_odbc.odbc)
    cnxn.execute("INSERT INTO orders VALUES (4, 'Dan', '1.00', 'late')")
    cnxn.commit()
    cnxn.close()
    mkdirs(ftp_server.root, "inbox")
    (tmp_path / "local" / "orders.csv").write_bytes(b"the vendor moved it on\n")

    second = retry(half_delivered)

    assert second.status == RunStatus.SUCCEEDED, second.error
    assert (ftp_server.root / "inbox" / "orders.csv").read_bytes() == ORDERS_CSV
    # The destination that already had the file was not sent it again.
    assert (tmp_path / "local" / "orders.csv").read_bytes() == b"the vendor moved it on\n"
    redone = list(Delivery.objects.filter(run=second))
    assert [(d.destination.kind, d.status, d.file.run_id) for d in redone] == [("ftp", DeliveryStatus.SENT, half_delivered.pk)]
    assert second.files.count() == 0 and second.rows == 3
    assert not second.log_lines.filter(stage="source").exists()
    assert f"Run {half_delivered.pk} made and stored the files" in log_text(second)
    assert source_run(second) == half_delivered
    assert [f.name for f in output_files(second)] == ["orders.csv"]


def test_a_chain_of_retries_goes_back_to_the_run_that_made_the_files(half_delivered, ftp_server):
    second = retry(half_delivered)  # the folder is still missing
    assert second.status == RunStatus.FAILED and second.error_stage == "delivery"
    mkdirs(ftp_server.root, "inbox")
    third = retry(second)
    assert third.status == RunStatus.SUCCEEDED, third.error
    assert source_run(third) == half_delivered
    assert (ftp_server.root / "inbox" / "orders.csv").read_bytes() == ORDERS_CSV
    assert Delivery.objects.filter(run=third).count() == 1


def test_a_stored_file_that_changed_is_not_sent(half_delivered, ftp_server):
    record = half_delivered.files.get()
    with open(record.stored.path, "ab") as fh:
        fh.write(b"tampered\n")
    mkdirs(ftp_server.root, "inbox")
    second = retry(half_delivered)
    assert second.status == RunStatus.FAILED and second.permanent
    assert "no longer matches its recorded size and SHA-256" in second.error
    assert not (ftp_server.root / "inbox" / "orders.csv").exists()
    assert record.sha256 == sha256(ORDERS_CSV)


def test_a_retry_of_an_earlier_stage_failure_runs_everything_again(sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, sql="select * from not_yet_there", output_name="late.csv")
    folder_destination(task, tmp_path / "out")
    first = run_task(task)
    assert first.status == RunStatus.FAILED and first.error_stage == "source"
    cnxn = pyodbc.connect(sqlite_odbc.odbc)
    cnxn.execute("CREATE TABLE not_yet_there (x INTEGER)")
    cnxn.execute("INSERT INTO not_yet_there VALUES (42)")
    cnxn.commit()
    cnxn.close()
    second = retry(first)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert source_run(second) is None
    assert (tmp_path / "out" / "late.csv").read_bytes() == b"x\n42\n"
