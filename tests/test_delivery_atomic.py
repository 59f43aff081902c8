"""No partial file is ever visible under its final name: a folder that fills up mid-copy, an SFTP session cut mid-upload.

A watcher thread looks at the target folder while the run uploads and
records every size it sees under the final name; the only size allowed is
the whole file's. After the failure, a retry sends the stored file whole.
"""

from __future__ import annotations

import os
import pwd
import signal
import threading
import time
from pathlib import Path

import pytest

from runs.models import Delivery, DeliveryStatus, RunStatus
from runs.runner import execute
from tasks.models import Task
from tests import factories
from tests.delivery_support import folder_destination, log_text, md5, retry, run_task, sha256, tmpfs
from tests.file_servers import ftp_conn, put

pytestmark = pytest.mark.django_db


class Watcher(threading.Thread):
    """Polls a folder: sizes seen under `name`, and whether a partial temporary file showed up."""

    def __init__(self, folder: Path, name: str, on_partial=None) -> None:
        super().__init__(daemon=True)
        self.folder, self.name, self.on_partial = folder, name, on_partial
        self.final_sizes: set[int] = set()
        self.saw_partial = False
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                entries = list(os.scandir(self.folder))
            except FileNotFoundError:
                entries = []
            for entry in entries:
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:
                    continue
                if entry.name == self.name:
                    self.final_sizes.add(size)
                elif entry.name.startswith(f".{self.name}.") and size > 0 and not self.saw_partial:
                    self.saw_partial = True
                    if self.on_partial:
                        self.on_partial()
            time.sleep(0.0005)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


def big_file_task(ftp_server, size: int, **fields) -> tuple[Task, bytes]:
    """A task moving one binary file from FTP (kept as is): fast to make, any size."""
    data = os.urandom(size)
    put(ftp_server.root, "in/big.bin", data)
    task = Task.objects.create(project=factories.project(), name="big", source_kind="ftp", source_connection=ftp_conn(ftp_server),
                               source_path="in/big.bin", output_type="keep", **fields)
    return task, data


@pytest.fixture
def tiny_filesystem():
    """A 256 KiB tmpfs: writing a larger file there fails part way with ENOSPC."""
    with tmpfs("size=256k") as mount_point:
        yield mount_point


def test_a_folder_that_fills_up_mid_copy_leaves_nothing_under_the_final_name(ftp_server, tiny_filesystem, tmp_path):
    task, data = big_file_task(ftp_server, 1024 * 1024)
    destination = folder_destination(task, tiny_filesystem)
    watcher = Watcher(tiny_filesystem, "big.bin")
    watcher.start()
    try:
        run = run_task(task)
    finally:
        watcher.stop()

    assert run.status == RunStatus.FAILED and run.error_stage == "delivery"
    assert "No space left on device" in run.error
    assert watcher.final_sizes == set()
    assert os.listdir(tiny_filesystem) == []  # the partial temporary file was removed too
    assert Delivery.objects.get(run=run).status == DeliveryStatus.FAILED

    # The share gets room again (another folder): the retry sends the stored copy, whole.
    destination.connection.folder = str(tmp_path / "roomy")
    destination.connection.save()
    second = retry(run)
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert (tmp_path / "roomy" / "big.bin").read_bytes() == data


def _sshd_session_pids(username: str) -> list[int]:
    """sshd processes serving `username`, below the sshd this test session started (never any other)."""
    parents, uids = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        uids[int(entry)] = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    ours = {pid for pid, parent in parents.items() if parent == os.getpid()}

    def below_ours(pid: int) -> bool:
        while pid in parents and pid > 1:
            if pid in ours:
                return True
            pid = parents[pid]
        return False

    uid = pwd.getpwnam(username).pw_uid
    return [pid for pid, owner in uids.items() if owner == uid and below_ours(pid)]


# paramiko's file object tries to close itself once more when collected, on the dead channel.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_sftp_upload_cut_mid_way_never_shows_a_partial_file_and_the_retry_sends_it_whole(ftp_server, sshd, tmp_path):
    task, data = big_file_task(ftp_server, 16 * 1024 * 1024, retry_max=1)
    disk = sshd.root / f"cut-{tmp_path.name[-20:]}"
    disk.mkdir()
    disk.chmod(0o777)
    factories.destination(task, factories.sftp_connection(sshd, folder=str(disk)))
    killed: list[int] = []

    def cut_the_session():
        for pid in _sshd_session_pids(sshd.username):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    watcher = Watcher(disk, "big.bin", on_partial=cut_the_session)
    watcher.start()
    try:
        run = run_task(task)
    finally:
        watcher.stop()

    assert killed, "the upload finished before the watcher saw it"
    assert run.status == RunStatus.FAILED and run.error_stage == "delivery" and not run.permanent
    assert watcher.final_sizes == set()
    assert not (disk / "big.bin").exists()
    record = run.files.get()
    assert (record.size, record.sha256) == (len(data), sha256(data))

    watcher = Watcher(disk, "big.bin")
    watcher.start()
    try:
        # A lost connection is worth a retry: the task's policy scheduled one; it runs now.
        second = execute(run.retries.get(status=RunStatus.RETRY_SCHEDULED).pk)
    finally:
        watcher.stop()
    assert second.status == RunStatus.SUCCEEDED, second.error
    arrived = (disk / "big.bin").read_bytes()
    assert arrived == data and md5(arrived) == record.md5
    assert watcher.final_sizes == {len(data)}  # under its final name the file was only ever whole
    # Exactly once: one upload by the retry, and one file under the final name.
    assert [(d.file_id, d.status) for d in second.deliveries.filter(kind="upload")] == [(record.pk, DeliveryStatus.SENT)]
    assert [p.name for p in disk.iterdir() if not p.name.startswith(".")] == ["big.bin"]
    assert "without running the source again" in log_text(second)
    assert not second.log_lines.filter(stage="source").exists()
