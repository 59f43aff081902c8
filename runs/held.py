"""Held runs: the runs the row guard stopped before delivery, and discarding their stored files.

A held run keeps its files in Courier's file storage (runs/pipeline/guard.py)
until a person decides: release (runs/state.py `release_held`, then the
release stage delivers them once) or discard (here: the run is recorded
cancelled and its stored files are removed, each one named in the run log).
Both come through the front door, runs/services.py.
"""

from __future__ import annotations

from django.db.models import QuerySet

from runs import state
from runs.models import LogLevel, Run, RunLog, RunStatus, Stage
from tasks.models import Task


def held_runs(task: Task | None = None) -> QuerySet:
    runs = Run.objects.filter(status=RunStatus.HELD).select_related("task__project").order_by("id")
    return runs.filter(task=task) if task is not None else runs


def discard(run: Run, user=None) -> bool:
    """Cancel a held run and remove its stored files; False when it was not held (any more)."""
    by = f" by {user}" if user else ""
    if not state.discard_held(run, f"Held files discarded{by}.", user):
        return False
    for record in list(run.files.all()):
        name, size, sha256 = record.name, record.size, record.sha256
        record.stored.delete(save=False)
        record.delete()
        RunLog.objects.create(run=run, stage=Stage.FINISH, message=f"Removed the held file {name} ({size} bytes, sha256 {sha256}) from storage.")
    RunLog.objects.create(run=run, stage=Stage.FINISH, level=LogLevel.WARNING, message=f"Discarded{by}: nothing was delivered.")
    return True
