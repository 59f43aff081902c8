"""What the stages of one run share: the run, its parameters, its folder and its files."""

from __future__ import annotations

import logging
import shutil
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings

from connections.clients.deadline import Deadline
from projects.parameters import Param, merge, resolve
from runs.models import Run, RunFile
from runs.pipeline.log import RunLogger
from tasks.models import Task

logger = logging.getLogger(__name__)


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
    # The run's one deadline (the task's timeout, from the claim), which every stage obeys.
    deadline: Deadline
    params: list[Param] = field(default_factory=list)
    files: list[LocalFile] = field(default_factory=list)
    stored: list[RunFile] = field(default_factory=list)  # filled by the output stage, one per file
    rows: int | None = None
    delivery_errors: list[Exception] = field(default_factory=list)
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


# A run works in COURIER_WORK_DIR/run-<run id>; a resend in resend-<file id>-<random> (runs/resend.py).
RUN_FOLDER_PREFIX = "run-"


def work_root() -> Path:
    root = Path(settings.COURIER_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def make_workdir(run: Run) -> Path:
    path = work_root() / f"{RUN_FOLDER_PREFIX}{run.pk}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    path.chmod(0o700)
    return path


def sweep_work_folders(prefix: str, still_working: Callable[[set[int]], set[int]], whose: str) -> list[Path]:
    """Remove this machine's work folders `<prefix><id>[-…]` whose id `still_working` does not return; returns them.

    A folder is made only once its work is claimed, and removed when that
    work ends: one left behind belongs to a worker that was killed. The ids
    are looked up after listing, so a folder listed belongs to work claimed
    before the lookup. `whose` names the work in the log ("a run that no
    longer runs").
    """
    work = Path(settings.COURIER_WORK_DIR)
    folders: dict[int, list[Path]] = {}
    for path in work.glob(f"{prefix}*") if work.is_dir() else ():
        number = path.name[len(prefix):].split("-", 1)[0]
        if number.isdigit() and path.is_dir():
            folders.setdefault(int(number), []).append(path)
    if not folders:
        return []
    working = still_working(set(folders))
    removed = [path for number, paths in folders.items() if number not in working for path in paths]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
        logger.warning("Removed %s, the work folder of %s.", path, whose)
    return removed
