"""What the task page needs to weigh a task's :name placeholders against its parameters (SPEC 6).

The check itself is one of the rules of tasks/validation.py, for the task page
and import_config alike. Only a query written in the task can be read at save
time; one fetched from a code location is checked when it runs
(runs/pipeline/source.py), where a placeholder without a parameter fails the
run for good.
"""

from __future__ import annotations

from connections.kinds import Reads
from connections.models import Connection
from projects.models import Project
from tasks.models import CodeLocationKind, CodeRole, Task

__all__ = ["dialect_of", "inline_query", "project_keys", "saved_keys"]


def project_keys(project: Project | None) -> list[str]:
    return list(project.parameters.values_list("key", flat=True)) if project and project.pk else []


def saved_keys(task: Task) -> list[str]:
    """The keys of the project's parameters and the task's own, as stored."""
    own = list(task.parameters.values_list("key", flat=True)) if task.pk else []
    return project_keys(task.project) + own


def dialect_of(conn: Connection | None) -> str:
    return (conn.dialect if conn else "") or "other"


def inline_query(task: Task) -> str | None:
    """The stored query of a database task when it is written in the task, else None."""
    if not task.pk or task.source_reads != Reads.QUERY:
        return None
    code = task.code_locations.filter(role=CodeRole.SOURCE, location=CodeLocationKind.INLINE).first()
    return code.text if code else None

