"""Retention of the output file history: prune old runs and their stored files.

A run is deleted (with its log, files and deliveries) when it finished more
than `days` days ago, unless it is one of the newest `keep` runs of its task
or holds one of the newest `keep` stored files of its task. A run that is
still waiting or working is never touched, nor an earlier attempt that a
kept run retries (a redelivery retry sends that attempt's files).

Rows go first, inside a transaction; the stored files are deleted after it
commits, so a failure can leave an orphaned file but never a run whose file
is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.db import transaction
from django.utils import timezone

from runs import state
from runs.models import Run, RunFile

BATCH = 200


def _storage():
    return RunFile._meta.get_field("stored").storage


@dataclass
class PruneReport:
    runs: int = 0
    files: int = 0
    bytes: int = 0
    file_errors: list[str] = field(default_factory=list)


def _protected(task_ids: set[int], keep: int) -> set[int]:
    """Run ids that retention never removes: the newest runs and newest files of each task, and what they retry."""
    protected: set[int] = set()
    if keep:
        for task_id in task_ids:
            protected.update(Run.objects.filter(task_id=task_id).order_by("-id").values_list("id", flat=True)[:keep])
            protected.update(RunFile.objects.filter(run__task_id=task_id).order_by("-id").values_list("run_id", flat=True)[:keep])
    # A waiting or working retry (or a kept one) may still need the files of the attempt it retries.
    frontier = protected | set(Run.objects.exclude(status__in=Run.FINISHED).values_list("id", flat=True))
    while frontier:
        earlier = set(Run.objects.filter(id__in=frontier, retry_of__isnull=False).values_list("retry_of_id", flat=True))
        frontier = earlier - protected
        protected |= earlier
    return protected


def candidates(days: int, keep: int, now: datetime | None = None) -> list[int]:
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = Run.objects.filter(status__in=Run.FINISHED).exclude(finished_at__gte=cutoff).filter(queued_at__lt=cutoff)
    rows = list(old.values_list("id", "task_id"))
    protected = _protected({task_id for _, task_id in rows}, keep)
    return [run_id for run_id, _ in rows if run_id not in protected]


def prune(days: int, keep: int, *, now: datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Delete runs and stored files beyond retention; with `dry_run`, only count them."""
    if days < 0 or keep < 0:
        raise ValueError("days and keep must be 0 or more")
    report = PruneReport()
    run_ids = candidates(days, keep, now)
    for start in range(0, len(run_ids), BATCH):
        _prune_batch(run_ids[start:start + BATCH], report, dry_run)
    return report


def _prune_batch(run_ids: list[int], report: PruneReport, dry_run: bool) -> None:
    files = list(RunFile.objects.filter(run_id__in=run_ids).values_list("stored", "size"))
    report.runs += len(run_ids)
    report.files += len(files)
    report.bytes += sum(size for _, size in files)
    if dry_run:
        return
    with transaction.atomic():
        tasks = set(Run.objects.filter(id__in=run_ids).values_list("task_id", flat=True))
        Run.objects.filter(id__in=run_ids).delete()
        state.refresh_latest(tasks)  # with keep=0 a task's newest run may be among them
    for name, _ in files:
        _delete_stored(name, report)


def _delete_stored(name: str, report: PruneReport) -> None:
    if not name:
        return
    try:
        _storage().delete(name)
    except SuspiciousFileOperation:
        report.file_errors.append(f"{name}: recorded at a path outside Courier's file storage; left alone")
        return
    except OSError as exc:
        report.file_errors.append(f"{name}: {exc.strerror or exc}")
        return
    _remove_empty_folders(name)


def _remove_empty_folders(name: str) -> None:
    """runs/<task>/<run>/ folders left empty on a local file storage."""
    try:
        folder = Path(_storage().path(name)).parent
        root = Path(_storage().path(""))
    except NotImplementedError:
        return  # a remote storage has no folders to tidy
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
