"""Querysets the pages share: tasks with their latest run, without a query per row."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from runs.models import Run
from tasks.models import Task


def with_last_run(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """Annotate each task with its latest run's id, status and time.

    Correlated subqueries on the (task, -id) index: one lookup per row inside
    the same SQL statement, never one query per row (SPEC: a task's status is
    the status of its latest run).
    """
    latest = Run.objects.filter(task=OuterRef("pk")).order_by("-id")
    return tasks.annotate(
        last_run_id=Subquery(latest.values("id")[:1]),
        last_status=Subquery(latest.values("status")[:1]),
        last_run_at=Subquery(latest.annotate(at=Coalesce("started_at", "due_at")).values("at")[:1]),
    )


def task_rows(tasks: QuerySet[Task] | None = None) -> QuerySet[Task]:
    """Tasks as the lists show them: project and owner joined, latest run annotated."""
    tasks = Task.objects.all() if tasks is None else tasks
    return with_last_run(tasks.select_related("project__owner"))
