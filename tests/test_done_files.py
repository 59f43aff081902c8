"""Done files: a marker per destination, written only once every file of the run has arrived there.

Two files move from an SFTP folder (kept as they are) to a destination of
each kind — OpenSSH SFTP, pyftpdlib FTP, Samba SMB, a local folder — whose
done file holds the manifest (name,size,sha256 per line), compared byte for
byte. A watcher on the destination's disk notes which files were there the
moment the done file appeared. A destination where a file failed gets no
done file; the retry that delivers the rest writes it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runs.models import Delivery, DeliveryKind, DeliveryStatus, RunStatus
from tasks.models import Task
from tests import factories
from tests.delivery_support import Polling, folder_destination, log_text, retry, run_task, sha256
from tests.file_servers import DESTINATION_KINDS, destination_connection, mkdirs, put

pytestmark = pytest.mark.django_db

INTENDED = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)
A, B = b"id,amount\n1,10.50\n", b"id,amount\n2,20.00\n3,0.10\n"


def manifest(*files: tuple[str, bytes]) -> bytes:
    return b"".join(f"{name},{len(data)},{sha256(data)}\n".encode() for name, data in files)


def two_file_task(sshd, tmp_path, **fields) -> Task:
    """Two files picked up from an SFTP folder of their own (one pyftpdlib server per test: two in one process race)."""
    pickup = mkdirs(sshd.root, f"pick-{tmp_path.name[-20:]}")
    put(pickup, "in/a.csv", A)
    put(pickup, "in/b.csv", B)
    source = factories.sftp_connection(sshd, name="pickup", folder=str(pickup))
    return Task.objects.create(project=factories.project(timezone="UTC"), name="pair", source_kind="sftp", source_connection=source,
                               source_path="in/*.csv", output_type="keep", **fields)


class FirstSight(Polling):
    """Watches a folder; the names in it at the moment `name` first appeared."""

    def __init__(self, folder: Path, name: str) -> None:
        super().__init__()
        self.folder, self.name = folder, name
        self.beside: set[str] | None = None

    def look(self) -> bool:
        names = set(os.listdir(self.folder))
        if self.name in names:
            self.beside = names - {self.name}
        return self.beside is not None


@pytest.mark.parametrize("kind", DESTINATION_KINDS)
def test_the_manifest_done_file_is_byte_exact_and_comes_after_every_file(sshd, request, tmp_path, kind):
    task = two_file_task(sshd, tmp_path)
    conn, disk = destination_connection(request, kind, tmp_path, name="drop")
    factories.destination(task, conn, folder="out", done_file="batch_%Y%m%d.ready", done_manifest=True)
    out = mkdirs(disk, "out")

    with FirstSight(out, "batch_20260314.ready") as sight:
        run = run_task(task, intended_at=INTENDED)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (out / "batch_20260314.ready").read_bytes() == manifest(("a.csv", A), ("b.csv", B))
    assert sight.beside is not None and {"a.csv", "b.csv"} <= sight.beside  # both files were there first
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv", "batch_20260314.ready"]
    done = Delivery.objects.get(run=run, kind=DeliveryKind.DONE_FILE)
    uploads = Delivery.objects.filter(run=run, kind=DeliveryKind.UPLOAD)
    assert (done.status, done.verified) == (DeliveryStatus.SENT, True)
    assert all(u.at <= done.at and u.pk < done.pk for u in uploads)
    assert "batch_20260314.ready written on Acme/drop (2 manifest line(s); size verified before the rename)" in log_text(run)


def test_a_name_pattern_makes_one_empty_done_file_per_file(sshd, tmp_path):
    task = two_file_task(sshd, tmp_path)
    folder_destination(task, tmp_path / "share", done_file="{name}.done")

    run = run_task(task, intended_at=INTENDED)

    assert run.status == RunStatus.SUCCEEDED, run.error
    share = tmp_path / "share"
    assert sorted(p.name for p in share.iterdir()) == ["a.csv", "a.csv.done", "b.csv", "b.csv.done"]
    assert (share / "a.csv.done").read_bytes() == b"" and (share / "b.csv.done").read_bytes() == b""


def test_no_done_file_where_a_file_failed_and_the_retry_writes_it_once_all_arrived(sshd, tmp_path):
    task = two_file_task(sshd, tmp_path, retry_max=1)
    disk = sshd.root / f"done-{tmp_path.name[-20:]}"
    disk.mkdir()
    disk.chmod(0o777)
    blocker = put(disk, "b.csv", b"an older b.csv the task may not overwrite\n")
    factories.destination(task, factories.sftp_connection(sshd, folder=str(disk)), done_file="ready_%Y%m%d.txt",
                          done_manifest=True, position=1)
    folder_destination(task, tmp_path / "share", done_file="ready_%Y%m%d.txt", done_manifest=True, position=2)

    first = run_task(task, intended_at=INTENDED)

    assert first.status == RunStatus.FAILED and first.error_stage == "delivery"
    assert (disk / "a.csv").read_bytes() == A
    assert not (disk / "ready_20260314.txt").exists()  # b.csv did not arrive there
    assert (tmp_path / "share" / "ready_20260314.txt").read_bytes() == manifest(("a.csv", A), ("b.csv", B))
    assert "No done file on SFTP" in log_text(first)

    blocker.unlink()
    second = retry(first)

    assert second.status == RunStatus.SUCCEEDED, second.error
    assert (disk / "b.csv").read_bytes() == B
    assert (disk / "ready_20260314.txt").read_bytes() == manifest(("a.csv", A), ("b.csv", B))
    # Each destination got its done file exactly once.
    done = Delivery.objects.filter(kind=DeliveryKind.DONE_FILE, status=DeliveryStatus.SENT)
    assert sorted(done.values_list("run_id", "destination__position")) == [(first.pk, 2), (second.pk, 1)]
