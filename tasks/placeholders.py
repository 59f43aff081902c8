"""A task's :name placeholders against its parameters when it is saved (SPEC 6): the task page, the admin, import_config.

Only a query written in the task can be read at save time; one fetched from a
code location is checked when it runs (runs/pipeline/source.py), where a
placeholder without a parameter fails the run for good.
"""

from __future__ import annotations

from connections.models import Connection
from projects.models import Project
from tasks import sqlbind
from tasks.models import CodeLocationKind, CodeRole, SourceKind, Task

__all__ = ["dialect_of", "inline_query", "problem", "project_keys", "saved_keys", "unused"]


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
    if not task.pk or task.source_kind != SourceKind.DATABASE:
        return None
    code = task.code_locations.filter(role=CodeRole.SOURCE, location=CodeLocationKind.INLINE).first()
    return code.text if code else None


def problem(task: Task) -> str | None:
    """Why the stored task's query cannot be bound with the stored parameters, or None."""
    sql = inline_query(task)
    return None if sql is None else sqlbind.problem(sql, dialect_of(task.source_connection), saved_keys(task))


def unused(task: Task) -> list[str]:
    """Stored parameters the stored inline query does not use."""
    sql = inline_query(task)
    return [] if sql is None else sqlbind.unused(sql, dialect_of(task.source_connection), saved_keys(task))
