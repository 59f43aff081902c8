"""What a run of a task would do, shown before it runs: the exact SQL and the output file names.

One function for the Task Details page and `manage.py preview_task`, so the
two can never disagree. Everything shown is masked here, once (tasks/masking.py).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.utils import timezone

from connections.kinds import Reads
from connections.masking import Masker
from connections.secrets import SecretError
from projects.parameters import Param, ParameterError
from runs.pipeline.context import load_parameters
from runs.pipeline.errors import StageFailure
from runs.pipeline.naming import encrypted_name, output_file_name, renamed, zip_file_name
from tasks import sqlbind, sqlbounds, sqltext
from tasks.code import CodeError, code_location, load_text
from tasks.masking import task_masker
from tasks.models import CodeLocationKind, CodeRole, Task
from tasks.sqlbind import Batch, Binding


@dataclass
class Preview:
    at: datetime
    sql: str | None = None  # the prepared SQL with parameters, sensitive values masked
    sql_note: str = ""  # why there is no SQL, or where it came from
    bindings: list[Binding] = field(default_factory=list)  # what each ? of the SQL is bound to, masked
    unused: list[str] = field(default_factory=list)  # parameter keys the SQL does not use
    file_names: list[str] = field(default_factory=list)
    name_note: str = ""
    errors: list[str] = field(default_factory=list)


def _intended(task: Task, at: datetime | None) -> datetime:
    zone = zoneinfo.ZoneInfo(task.project.timezone)
    return (at or timezone.now()).astimezone(zone)


def _query_text(task: Task, fetch: bool) -> tuple[str | None, str]:
    """The query before parameters, and a note on where it came from.

    A page view never fetches remote code (it would be slow and could fail
    the page); it shows the cached copy when there is one. The command may
    fetch (`fetch=True`).
    """
    code = code_location(task, CodeRole.SOURCE)
    if code is None:
        return None, "The task has no query yet."
    if code.location == CodeLocationKind.INLINE or fetch:
        return load_text(task, CodeRole.SOURCE), ""
    if code.cached_text:
        return code.cached_text, f"From the copy cached at {code.cached_at:%Y-%m-%d %H:%M}; the run fetches it from {code.get_location_display()} again."
    return None, f"The query is fetched from {code.get_location_display()} when the task runs."


def _dialect(task: Task) -> str:
    return task.source_connection.dialect if task.source_connection_id else "other"


def _bound(task: Task, params: list[Param], fetch: bool) -> tuple[str | None, list[Batch] | None, str]:
    """(query text, the batches that will run, note); no text and batches when the query is not at hand."""
    text, note = _query_text(task, fetch)
    if text is None:
        return None, None, note
    return text, sqlbind.bind(text, _dialect(task), params), note


def sql_preview(task: Task, params: list[Param], masker: Masker, fetch: bool = False) -> tuple[str | None, str]:
    """(masked SQL, note) for a database task."""
    _, batches, note = _bound(task, params, fetch)
    return (None if batches is None else masker.mask(sqltext.show([b.sql for b in batches]))), note


def _add_sql(result: Preview, task: Task, params: list[Param], masker: Masker, fetch: bool) -> None:
    """The SQL, and why the connection would refuse it: both are shown, so the refused statement can be found."""
    try:
        text, batches, result.sql_note = _bound(task, params, fetch)
    except (sqltext.SqlError, CodeError) as exc:
        result.errors.append(masker.mask(f"The SQL cannot be prepared: {exc}"))
        return
    if batches is None:
        return
    result.sql = masker.mask(sqltext.show([b.sql for b in batches]))
    result.bindings = [replace(b, shown=masker.mask(b.shown)) for b in sqlbind.bindings(batches, params)]
    result.unused = sqlbind.unused(text, _dialect(task), [p.key for p in params])
    if not task.source_connection_id:
        return
    try:
        sqlbounds.check_for(task.source_connection, [b.sql for b in batches])
    except sqlbounds.SqlRefused as exc:
        result.errors.append(masker.mask(str(exc)))


def _made_name(task: Task, params: list[Param], at: datetime) -> str | None:
    """The name of the file the task makes, or None when files keep their source names."""
    table_output = task.source_reads == Reads.QUERY or (task.source_reads == Reads.COMMAND and task.source_stdout_as_file)
    if table_output:
        return output_file_name(task, params, at)
    if task.output_name:
        return renamed(task, "", params, at)
    return None


def file_name_preview(task: Task, params: list[Param], masker: Masker, at: datetime) -> tuple[list[str], str]:
    """(names of the delivered files, note) as a run intended at `at` would make them."""
    name = _made_name(task, params, at)
    names, note = ([name], "") if name else ([], "Files keep the names they have at the source.")
    if task.gpg_key_id:
        names = [encrypted_name(n, task.gpg_armor) for n in names]
        note = note and f"{note} Each is encrypted (.{'asc' if task.gpg_armor else 'gpg'} added)."
    if task.zip_enabled:
        inner = ", ".join(names) if names else "the files"
        names, note = [zip_file_name(task, params, at)], f"One zip archive holding {inner}."
    return [masker.mask(n) for n in names], note


def preview(task: Task, at: datetime | None = None, *, fetch: bool = False) -> Preview:
    """Everything the preview shows; problems are collected as messages, never raised."""
    result = Preview(at=_intended(task, at))
    try:
        params = load_parameters(task, result.at)
        masker = task_masker(task, params)
    except ParameterError as exc:
        result.errors.append(f"The parameters cannot be read: {exc}")
        return result
    except SecretError as exc:
        result.errors.append(str(exc))
        return result
    if task.source_reads == Reads.QUERY:
        _add_sql(result, task, params, masker, fetch)
    else:
        result.sql_note = "Not a database task."
    try:
        result.file_names, result.name_note = file_name_preview(task, params, masker, result.at)
    except StageFailure as exc:
        result.errors.append(masker.mask(exc.message))
    return result
