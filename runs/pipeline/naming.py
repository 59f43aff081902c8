"""Output file names from the task's settings, parameters and date patterns."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath

from runs.pipeline.errors import StageFailure
from runs.pipeline.formats import EXTENSIONS
from tasks.models import OutputType, Task
from tasks.parameters import Param, ParameterError, check_file_name, substitute


def render_name(template: str, params: list[Param], at: datetime, what: str) -> str:
    try:
        return check_file_name(substitute(template, params, at))
    except ParameterError as exc:
        raise StageFailure("output", f"The {what} cannot be made: {exc}", permanent=True) from None


def output_file_name(task: Task, params: list[Param], at: datetime) -> str:
    """The name of a table output file: the configured name, or the task's name, with the type's extension."""
    name = render_name(task.output_name or task.name, params, at, "output file name")
    extension = EXTENSIONS.get(task.output_type or OutputType.CSV, "")
    if extension and not PurePosixPath(name).suffix:
        name += extension
    return name


def numbered(names: list[str]) -> list[str]:
    """Make names unique by numbering repeats (a.csv, a_2.csv, …): several files never overwrite each other."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
        while candidate in seen:
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        seen.add(candidate)
        result.append(candidate)
    return result
