"""The secrets of a task, collected one way for its run log, preview, mails and pages (connections/masking.py masks).

What a task's texts must not show: Courier's own keys, every secret of every
connection the task uses (source, destinations, code locations) and the
values of its sensitive parameters. A secret that cannot be decrypted is an
error (SPEC §7): `task_masker` raises SecretError and each caller says so in
its own way — a run fails at the parameters stage, a preview lists the
error, a mail is sent with its parameters left unfilled and the error
logged. Only a page that lists names (`shown_masker`) carries on, hiding
each name whole, so that an unreadable key never shows a name in clear.
"""

from __future__ import annotations

from collections.abc import Iterable

from connections.masking import HideEverything, Masker, masker_for
from connections.models import Connection
from connections.secrets import SecretError
from projects.parameters import Param, merge
from tasks.models import Task


def task_connections(task: Task) -> list[Connection]:
    connections = [task.source_connection, *(d.connection for d in task.destinations.all())]
    connections += [c.connection for c in task.code_locations.all()]
    return [c for c in connections if c is not None]


def defined_parameters(task: Task) -> list[Param]:
    """The task's parameters over its project's, as written (date patterns not yet filled in)."""
    project = [p.as_param() for p in task.project.parameters.all()]
    return merge(project, [p.as_param() for p in task.parameters.all()])


def task_masker(task: Task, params: Iterable[Param] | None = None) -> Masker:
    """The masker for any text about `task`; `params` are a run's filled-in parameters, by default those defined.

    Raises SecretError when a connection secret or a sensitive value cannot be decrypted.
    """
    params = defined_parameters(task) if params is None else params
    return masker_for(task_connections(task), [p.value for p in params if p.sensitive])


def shown_masker(task: Task) -> Masker:
    """For pages that show the task's file names: as `task_masker`, but never failing the page."""
    try:
        return task_masker(task)
    except SecretError:
        return HideEverything()
