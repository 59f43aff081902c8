"""Verified delivery: the server's size of each upload is checked before the rename to its final name.

Against real servers: OpenSSH (and an sshd whose SFTP subsystem silently
loses data past a byte limit, tests/truncating_sftp.py), pyftpdlib, Samba,
and a local folder. A server that takes the file away the moment it has its
final name (common on partner SFTP servers) is a delivery, not an error.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from runs.models import Delivery, DeliveryStatus, RunStatus
from tests import factories
from tests.delivery_support import ORDERS_CSV, Polling, log_text, orders_task, run_task
from tests.file_servers import DESTINATION_KINDS, destination_connection
from tests.servers_common import shared_tmp
from tests.servers_daemons import run_sshd

pytestmark = pytest.mark.django_db

TRUNCATE_AT = 40
assert len(ORDERS_CSV) > TRUNCATE_AT


@pytest.fixture(scope="session")
def truncating_sshd():
    """An OpenSSH sshd whose SFTP server keeps only the first 40 bytes of each file and says every write succeeded."""
    folder = shared_tmp("trunc-sftp-")
    script = folder / "truncating_sftp.py"
    shutil.copy(Path(__file__).with_name("truncating_sftp.py"), script)
    script.chmod(0o755)
    yield from run_sshd(f"/usr/bin/python3 {script} /usr/lib/openssh/sftp-server {TRUNCATE_AT}", name="sshd-trunc-")
    shutil.rmtree(folder, ignore_errors=True)


def server_folder(server, tmp_path: Path) -> Path:
    folder = server.root / f"v-{tmp_path.name[-20:]}"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


class NameWatcher(Polling):
    """Polls a folder for `name`: whether it ever appeared; with `take_away`, removes it the moment it does."""

    def __init__(self, folder: Path, name: str, take_away: bool = False) -> None:
        super().__init__()
        self.path, self.take_away = folder / name, take_away
        self.seen = False

    def look(self) -> bool:
        if os.path.lexists(self.path):
            self.seen = True
            if self.take_away:
                self.path.unlink(missing_ok=True)
        return False


@pytest.mark.parametrize("kind", DESTINATION_KINDS)
def test_each_upload_is_recorded_as_verified(sqlite_odbc, request, tmp_path, kind):
    conn, disk = destination_connection(request, kind, tmp_path)
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    factories.destination(task, conn)

    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (disk / "orders.csv").read_bytes() == ORDERS_CSV
    delivery = Delivery.objects.get(run=run)
    assert (delivery.status, delivery.verified) == (DeliveryStatus.SENT, True)
    assert f"Uploaded orders.csv ({len(ORDERS_CSV)} bytes)" in log_text(run)
    assert "size verified before the rename" in log_text(run)


def test_a_server_that_loses_data_fails_the_delivery_before_the_final_name_exists(sqlite_odbc, truncating_sshd, tmp_path):
    disk = server_folder(truncating_sshd, tmp_path)
    task = orders_task(sqlite_odbc, output_name="orders.csv", retry_max=1)
    factories.destination(task, factories.sftp_connection(truncating_sshd, folder=str(disk)))

    with NameWatcher(disk, "orders.csv") as watcher:
        run = run_task(task)

    assert run.status == RunStatus.FAILED and run.error_stage == "delivery"
    assert f"the server holds {TRUNCATE_AT} of its {len(ORDERS_CSV)} bytes" in run.error
    assert "the final name was never used" in run.error
    assert not watcher.seen  # not even for a moment
    assert list(disk.iterdir()) == []  # the short temporary file is removed too
    delivery = Delivery.objects.get(run=run)
    assert (delivery.status, delivery.verified) == (DeliveryStatus.FAILED, False)
    # Lost data may be a passing fault (a full quota): worth the retry the task allows.
    assert not run.permanent and run.retries.filter(status=RunStatus.RETRY_SCHEDULED).exists()


def test_a_server_that_takes_the_file_away_right_after_the_rename_is_a_delivery(sqlite_odbc, sshd, tmp_path):
    disk = server_folder(sshd, tmp_path)
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    factories.destination(task, factories.sftp_connection(sshd, folder=str(disk)))

    with NameWatcher(disk, "orders.csv", take_away=True) as watcher:
        run = run_task(task)
        deadline = time.monotonic() + 5
        while not watcher.seen and time.monotonic() < deadline:
            time.sleep(0.01)

    assert watcher.seen and not (disk / "orders.csv").exists()  # the partner's server took it
    assert run.status == RunStatus.SUCCEEDED, run.error
    delivery = Delivery.objects.get(run=run)
    assert (delivery.status, delivery.verified, delivery.error) == (DeliveryStatus.SENT, True, "")
