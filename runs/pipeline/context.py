"""What the stages of one run share: the run, its parameters, its folder and its files."""

from __future__ import annotations

import shutil
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings

from connections.clients.deadline import Deadline
from projects.parameters import Param, merge, resolve
from runs.models import Run, RunFile
from runs.pipeline.log import RunLogger
from tasks.models import Task


def task_deadline(task: Task, used_seconds: float = 0.0) -> Deadline:
    """The task's timeout less what is already used (a minute is COURIER_TIMEOUT_MINUTE_SECONDS long; tests shorten it)."""
    minutes = task.timeout_minutes
    limit = f"the task timeout of {minutes} minute{'' if minutes == 1 else 's'}"
    return Deadline.after(minutes * settings.COURIER_TIMEOUT_MINUTE_SECONDS - used_seconds, limit)


@dataclass
class LocalFile:
    """A file in the run's folder on its way to the output stage."""

    path: Path
    name: str
    rows: int | None = None  # data rows for table output; None for opaque files


@dataclass
class RunContext:
    run: Run
    task: Task
    log: RunLogger
    workdir: Path
    at: datetime
    params: list[Param] = field(default_factory=list)
    files: list[LocalFile] = field(default_factory=list)
    stored: list[RunFile] = field(default_factory=list)  # filled by the output stage, one per file
    rows: int | None = None
    delivery_errors: list[Exception] = field(default_factory=list)
    # The run's one deadline (the task's timeout), which every stage obeys; None outside a run.
    deadline: Deadline | None = None
    # What the row guard (guard.py) found; `hold` says the files wait in storage for a person.
    guard_report: str = ""
    hold: bool = False

    def local_paths(self) -> dict[int, Path]:
        """The local copy of each stored file, by its RunFile id."""
        return {record.pk: local.path for record, local in zip(self.stored, self.files, strict=True)}


def intended_time(run: Run, task: Task) -> datetime:
    """The run's intended time in the project's zone: dates in names come from it."""
    return run.intended_at.astimezone(zoneinfo.ZoneInfo(task.project.timezone))


def load_parameters(task: Task, at: datetime) -> list[Param]:
    project = [p.as_param() for p in task.project.parameters.all()]
    own = [p.as_param() for p in task.parameters.all()]
    return resolve(merge(project, own), at)


def make_workdir(run: Run) -> Path:
    path = Path(settings.COURIER_WORK_DIR) / f"run-{run.pk}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    path.chmod(0o700)
    return path
