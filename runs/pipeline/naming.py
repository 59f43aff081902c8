"""Output file names from the task's settings, parameters and date patterns.

Rules (SPEC §3.8):
- a blank name keeps each file's own name (the source's, or the script's);
- a name may use parameters and date patterns; the extension comes from the
  output type unless the name has one (a kept file keeps its own extension);
- several files that end up with one name are numbered, never overwritten;
- an encrypted file keeps its name with `.gpg` (or `.asc` for armour) added;
- the zip archive's name is rendered the same way, `.zip` added if missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath

from projects.parameters import Param, ParameterError, check_file_name, substitute
from runs.models import Stage
from runs.pipeline.errors import StageFailure
from runs.pipeline.formats import EXTENSIONS
from tasks.models import OutputType, Task

STAGE = Stage.OUTPUT


def render_name(template: str, params: list[Param], at: datetime, what: str) -> str:
    try:
        return check_file_name(substitute(template, params, at))
    except ParameterError as exc:
        raise StageFailure(STAGE, f"The {what} cannot be made: {exc}", permanent=True) from None


def output_file_name(task: Task, params: list[Param], at: datetime) -> str:
    """The name of a table output file: the configured name, or the task's name, with the type's extension."""
    name = render_name(task.output_name or task.name, params, at, "output file name")
    extension = EXTENSIONS.get(task.output_type or OutputType.CSV, "")
    if extension and not PurePosixPath(name).suffix:
        name += extension
    return name


def renamed(task: Task, original: str, params: list[Param], at: datetime, *, table: bool = False) -> str:
    """The delivered name of one file: its own name when the task names nothing.

    `table` says Courier wrote the file itself (query output, a re-delimited
    source): a workbook or JSON-lines file then gets its own extension even
    with a blank name, since a workbook called .csv would not open.
    """
    if not task.output_name:
        extension = EXTENSIONS.get(task.output_type)
        if table and task.output_type in (OutputType.XLSX, OutputType.JSONL) and PurePosixPath(original).suffix != extension:
            return str(PurePosixPath(original).with_suffix(extension)) if PurePosixPath(original).suffix else original + extension
        return original
    name = render_name(task.output_name, params, at, "output file name")
    if PurePosixPath(name).suffix:
        return name
    extension = EXTENSIONS.get(task.output_type) or PurePosixPath(original).suffix
    return name + extension


def final_names(task: Task, originals: Sequence[tuple[str, bool]], params: list[Param], at: datetime) -> list[str]:
    """Names for (own name, written by Courier) pairs, numbered where they repeat."""
    return numbered([renamed(task, name, params, at, table=table) for name, table in originals])


def numbered(names: Sequence[str]) -> list[str]:
    """Make names unique by numbering repeats (a.csv, a_2.csv, …): several files never overwrite each other."""
    taken = set(names)
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
        while candidate in seen or (candidate != name and candidate in taken):
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        seen.add(candidate)
        result.append(candidate)
    return result


def encrypted_name(name: str, armor: bool) -> str:
    return name + (".asc" if armor else ".gpg")


def zip_file_name(task: Task, params: list[Param], at: datetime) -> str:
    name = render_name(task.zip_name or task.name, params, at, "zip name")
    if PurePosixPath(name).suffix.lower() != ".zip":
        name += ".zip"
    return name
