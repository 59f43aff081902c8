"""Writing code that runs is a privilege of its own (SPEC §8): which settings are code, and who may change them.

Code that runs: a processing script (from any location) with its entry file,
requirements and network switch, the script of a Python-script task, the
command of an SSH source, and any code kept outside the task (SFTP/FTP/SMB,
GitLab, web URL), SQL included. Inline SQL is not: the connection's account
and read-only flag bound what it can do, so whoever may change a task may
edit it.

A user without the right meets two checks, both built on the rules below:
- the task page's forms lock the code fields: shown disabled, and a posted
  value that differs from the saved one is refused (`CodeLockMixin`); the
  admin has no task form (its task pages lead to Courier's);
- what was saved is compared with what was there before (`refuse_saved_change`),
  inside the saving transaction, so a change made some other way (switching
  the source kind, say) is refused and rolled back.
A copy of a task with code is a new task with code: refused too (`refuse_copy`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from django import forms
from django.core.exceptions import PermissionDenied

from connections import kinds
from connections.kinds import Reads
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, SourceKind, Task

CODE_PERMISSION = "tasks.write_code"
# A script-only task, and the sources that run a command.
CODE_SOURCE_KINDS = frozenset({SourceKind.PYTHON, *kinds.sources_reading(Reads.COMMAND)})
LOCATION_FIELDS = ["role", "location", "text", "connection", "path", "url", "cache"]
TASK_CODE_FIELDS = ["use_script", "processing_entry", "processing_requirements", "script_network"]

# A code snapshot: what each piece of code is called on the page → a comparable value.
Code = dict[str, object]
# The code fields of a form: each locked whole (None) or only against the listed values.
Locks = dict[str, frozenset | None]


def may_write_code(user) -> bool:
    return user.has_perm(CODE_PERMISSION)  # active superusers hold every permission


# --------------------------------------------------------------------------
# Which settings are code
# --------------------------------------------------------------------------


def _text(value: str) -> str:
    # Forms strip text and browsers send CRLF: neither changes what runs.
    return value.replace("\r\n", "\n").strip()


def _location(code: CodeLocation | None) -> tuple | None:
    if code is None:
        return None
    if code.location == CodeLocationKind.INLINE:
        return CodeLocationKind.INLINE, _text(code.text)
    return code.location, code.connection_id, code.path, code.url, code.cache


def code_of(task: Task, locations: Iterable[CodeLocation]) -> Code:
    """Every setting of `task` that decides which code runs, named as the page names it."""
    by_role = {c.role: c for c in locations}
    query, script = by_role.get(CodeRole.SOURCE), by_role.get(CodeRole.PROCESSING)
    remote_query = query is not None and query.location != CodeLocationKind.INLINE
    return {
        "Python-script task": task.source_kind == SourceKind.PYTHON,
        "SSH command": _location(query) if task.source_reads == Reads.COMMAND else None,
        "query kept outside the task": _location(query) if remote_query else None,
        "processing script": _location(script),
        "script entry file": _text(task.processing_entry),
        "script requirements": _text(task.processing_requirements),
        # Not code, but the sandbox's door: whoever may not write the script may not open it either.
        "script network access": task.script_network,
    }


def saved_code(task_pk: int | None) -> Code:
    """The code of the task as the database holds it now (none for a task not saved yet)."""
    if task_pk is None:
        return code_of(Task(), [])
    return code_of(Task.objects.get(pk=task_pk), CodeLocation.objects.filter(task_id=task_pk))


def code_changes(before: Code, after: Code) -> list[str]:
    return [name for name, value in after.items() if before.get(name) != value]


# --------------------------------------------------------------------------
# Refusing a change
# --------------------------------------------------------------------------


def denied(changed: list[str]) -> PermissionDenied:
    return PermissionDenied(
        f"You do not have permission to write code that runs, and this would change: {', '.join(changed)}. "
        "Nothing was saved; the other settings may be changed without those fields."
    )


def refuse_saved_change(user, before: Code, task_pk: int) -> None:
    """Call inside the saving transaction: raising there undoes the whole save."""
    if may_write_code(user):
        return
    changed = code_changes(before, saved_code(task_pk))
    if changed:
        raise denied(changed)


def refuse_copy(user, tasks: Iterable[Task]) -> None:
    """A copy is a new task carrying the same code: making one needs the right to write code."""
    if may_write_code(user):
        return
    for task in tasks:
        code = code_changes(saved_code(None), saved_code(task.pk))
        if code:
            raise PermissionDenied(
                f"“{task.name}” has code that runs ({', '.join(code)}); "
                "only a user with permission to write code may copy it."
            )


# --------------------------------------------------------------------------
# Locking form fields
# --------------------------------------------------------------------------


def task_locks(task: Task) -> Locks:
    """The task's own code fields; the source kind may change, but not to or from a kind that is code."""
    kind = None if task.source_kind in CODE_SOURCE_KINDS else CODE_SOURCE_KINDS
    return {"source_kind": kind, **dict.fromkeys(TASK_CODE_FIELDS)}


def location_locks(code: CodeLocation | None, role: str, source_kind: str) -> Locks:
    """Every field of a code location, except the text of inline SQL."""
    locks = dict.fromkeys(LOCATION_FIELDS)
    inline = code is None or code.location == CodeLocationKind.INLINE
    if role == CodeRole.SOURCE and kinds.reads(source_kind) != Reads.COMMAND and inline:
        del locks["text"]
    return locks


class LockedOptionsSelect(forms.Select):
    """A select whose locked options are shown but cannot be chosen."""

    def __init__(self, *args, locked: frozenset = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.locked = locked

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value in self.locked:
            option["attrs"]["disabled"] = True
        return option


class CodeLockMixin:
    """A form whose code fields can be locked for a user who may not write code.

    A locked field is shown disabled and keeps its saved value. Browsers do not
    send disabled fields, so a missing one means "unchanged"; a sent one that
    differs is a request to change code and is refused outright (403), not
    shown again as a mistake to correct.
    """

    code_locks: Locks = {}

    def lock_code(self, locks: Locks) -> None:
        self.code_locks = {name: values for name, values in locks.items() if name in self.fields}
        for name, values in self.code_locks.items():
            field = self.fields[name]
            if values is None:
                field.disabled = True
            else:
                field.widget = LockedOptionsSelect(attrs=field.widget.attrs, choices=field.choices, locked=values)

    def clean(self):
        changed = [str(self.fields[name].label) for name, values in self.code_locks.items() if self._lock_broken(name, values)]
        if changed:
            raise denied(changed)
        return super().clean()

    def _lock_broken(self, name: str, values: frozenset | None) -> bool:
        field = self.fields[name]
        initial = self.get_initial_for_field(field, name)
        if values is not None:
            chosen = self.cleaned_data.get(name)
            return chosen in values and chosen != initial
        html_name = self.add_prefix(name)
        if html_name not in self.data:
            return False
        probe = copy.copy(field)
        probe.disabled = False  # a disabled field never reports a change
        return probe.has_changed(initial, field.widget.value_from_datadict(self.data, self.files, html_name))
