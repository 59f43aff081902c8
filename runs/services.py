"""What the admin, the pages, the commands and the worker call to start or stop runs."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from runs.models import CLAIMABLE, Run, RunStatus, Trigger
from tasks.models import Task


def create_run(task: Task, trigger: str, *, user=None, intended_at: datetime | None = None, **extra) -> Run:
    now = timezone.now()
    return Run.objects.create(
        task=task, trigger=trigger, started_by=user, intended_at=intended_at or now, due_at=now,
        status=RunStatus.QUEUED, **extra,
    )


def enqueue(run: Run) -> None:
    """Hand the run to a worker once the row is committed, so the worker can see it."""
    transaction.on_commit(
        lambda: async_task("runs.jobs.execute_run", run.pk, task_name=f"run-{run.pk}", group="runs")
    )


def run_now(task: Task, user=None, trigger: str = Trigger.MANUAL) -> Run:
    with transaction.atomic():
        run = create_run(task, trigger, user=user)
        enqueue(run)
    return run


def cancel(run: Run) -> bool:
    """Cancel a run that has not started; False if it is already running or finished."""
    changed = Run.objects.filter(pk=run.pk, status__in=CLAIMABLE).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return bool(changed)
