"""What can only fail when a task runs is refused when it is saved (SPEC §12): one set of rules for every way in.

The task page (tasks/forms.py) and import_config (tasks/configuration/) hand
the task as it would be saved — the task, its query or command and its
processing script, its destinations, the parameter keys it will see — to
`refusals()`, each part labelled with the caller's own name for it (a form,
a JSON path), and show every refusal on that part's field. The admin has no
task form of its own: its task pages lead to Courier's (tasks/admin.py).

The models' clean() say which fields a choice needs; the rules here are what
the run would trip over:

- a name (output file, zip) that is no plain file name: the file is written
  into each destination's folder, so a "/" or ".." would leave it;
- a remote path (source files, code on a file server, a destination folder)
  outside its connection's base folder (connections/clients/base.py);
- a "%" that starts no date pattern in a name or a source path (write %%);
- a query whose result would be kept "as is" without a processing script;
- a web or GitLab URL outside its connection's base URL or on this machine;
- inline SQL its connection may not run (tasks/sqlbounds.py), or with a
  :name placeholder that no parameter fills (tasks/sqlbind.py, SPEC §6).

Each is checked again when the task runs: a parameter's value can still
carry a name out of its folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from connections import kinds
from connections.clients.addresses import written_local
from connections.clients.base import outside_base
from connections.kinds import Reads
from projects.parameters import file_name_problem, stray_percent, without_keys
from tasks import placeholders, sqlbind, sqlbounds
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Destination, OutputType, Task

Where = TypeVar("Where")

FILE_LOCATIONS = kinds.code_kinds("path")
URL_LOCATIONS = kinds.code_kinds("url")


@dataclass(frozen=True)
class Refusal(Generic[Where]):
    where: Where  # the caller's name for the part: a form, a JSON path
    field: str  # the model field that holds the value
    message: str


@dataclass
class Draft(Generic[Where]):
    """A task as it would be saved, none of it saved yet (or saved inside a transaction that may still roll back)."""

    task: Task
    where: Where
    script: bool = False  # a processing script runs after the source
    codes: list[tuple[Where, CodeLocation]] = field(default_factory=list)  # the query or command and the script that apply
    destinations: list[tuple[Where, Destination]] = field(default_factory=list)
    parameter_keys: set[str] | None = field(default_factory=set)  # the project's and the task's; None: not known yet


def refusals(draft: Draft[Where]) -> list[Refusal[Where]]:
    """Everything in `draft` that would make its runs fail, each on the part and field that holds it."""
    found = [Refusal(draft.where, name, message) for name, message in _task_problems(draft)]
    for where, code in draft.codes:
        found += [Refusal(where, name, message) for name, message in _code_problems(draft, code)]
    for where, destination in draft.destinations:
        if destination.connection_id and destination.folder and (problem := outside_base(destination.connection.folder, destination.folder)):
            found.append(Refusal(where, "folder", problem))
    return found


def _task_problems(draft: Draft) -> Iterator[tuple[str, str]]:
    task, keys = draft.task, draft.parameter_keys or ()
    if task.source_reads == Reads.FILES and task.source_connection_id and task.source_path:
        problem = outside_base(task.source_connection.folder, task.source_path) or _stray_percent(task.source_path, keys)
        if problem:
            yield "source_path", problem
    if task.source_reads == Reads.QUERY and task.output_type == OutputType.KEEP and not draft.script:
        yield "output_type", ("“Keep as is” passes source files on unchanged, but a query gives rows, not a file: "
                              "choose CSV, delimited text, Excel or JSON lines.")
    if task.output_name and (problem := _name_problem(task.output_name, "output file name", keys)):
        yield "output_name", problem
    if task.zip_enabled and task.zip_name and (problem := _name_problem(task.zip_name, "zip name", keys)):
        yield "zip_name", problem


def _code_problems(draft: Draft, code: CodeLocation) -> Iterator[tuple[str, str]]:
    task = draft.task
    if code.location in FILE_LOCATIONS and code.connection_id and code.path:
        if problem := outside_base(code.connection.folder, code.path):
            yield "path", problem
    elif code.location in URL_LOCATIONS and code.url:
        if problem := written_local(code.url) or (code.connection_id and kinds.client_for(code.connection).scope_problem(code.url)):
            yield "url", problem
    elif code.location == CodeLocationKind.INLINE and code.role == CodeRole.SOURCE and task.source_reads == Reads.QUERY:
        conn = task.source_connection if task.source_connection_id else None
        problem = sqlbounds.refusal_in(conn, code.text) if conn else None
        if not problem and draft.parameter_keys is not None:
            problem = sqlbind.problem(code.text, placeholders.dialect_of(conn), draft.parameter_keys)
        if problem:
            yield "text", problem


def _name_problem(name: str, what: str, keys: Iterable[str]) -> str | None:
    """Why a file or zip name cannot be used as written; the values of parameters are checked when it runs."""
    own = without_keys(name, keys)
    if problem := file_name_problem(own):
        return (f"The {what} “{name}” {problem}: give a plain file name; "
                "each destination's folder says where the file goes.")
    return _stray_percent(name, keys)


def _stray_percent(text: str, keys: Iterable[str]) -> str | None:
    stray = stray_percent(without_keys(text, keys))
    if stray is None:
        return None
    return (f"“{stray}” in “{text}” is no date pattern; write %% for a percent sign "
            "(date patterns: %Y %y %m %b %B %d %j %a %A %w %U %W %H %I %M %S %f %p).")
