"""Querysets the pages share: tasks with their latest run, without a query per row."""

from __future__ import annotations

from django.db.models import F, QuerySet

from tasks.models import Task


def with_last_run(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """Annotate each task with its latest run's id, status and time (SPEC: a task's status is that of its latest run).

    Read from the task's LatestRun row, which runs/state.py keeps in step:
    one join, where searching each task's runs for the newest cost an index
    probe per task in every query that filters or counts by status.
    """
    return tasks.annotate(
        last_run_id=F("latest_run__run_id"), last_status=F("latest_run__status"), last_run_at=F("latest_run__at"),
    )


def task_rows(tasks: QuerySet[Task] | None = None) -> QuerySet[Task]:
    """Tasks as the lists show them: project and owner joined, latest run annotated."""
    tasks = Task.objects.all() if tasks is None else tasks
    return with_last_run(tasks.select_related("project__owner"))
