"""Builders for the page tests: a world of projects, tasks and runs made with bulk inserts."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from connections.models import Connection
from projects.models import Project
from runs import state
from runs.models import Run, RunFile, RunLog, RunStatus, Trigger
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories

STATUSES = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.CANCELLED]
# A database password and a sensitive parameter that must never appear on a page.
DB_SECRET = "Pwd=Sup3r-Secret-Db-Pass"
SFTP_SECRET = "sftp-Secret-Pass-9"


def database_connection() -> Connection:
    existing = Connection.objects.filter(name="warehouse").first()
    return existing or factories.connection("database", name="warehouse", dialect="postgresql",
                                odbc=f"Driver={{PostgreSQL Unicode}};Server=db;Database=dw;Uid=u;{DB_SECRET};")


def sftp_connection() -> Connection:
    return factories.connection("sftp", name="drop", host="sftp.example.test", username="u", password=SFTP_SECRET)


def connections_to_pick(tmp_path) -> dict[str, Connection]:
    """One connection of each kind a task's source or destination picks, as a superuser made them; by kind."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    return {
        "database": factories.connection("database", name="warehouse", dialect="sqlite",
                                         odbc=f"Driver={{SQLite3}};Database={tmp_path / 'dw.sqlite3'};"),
        "sftp": factories.connection("sftp", name="drop", host="sftp.example.test", username="u", folder="/in"),
        "ftp": factories.connection("ftp", name="legacy", host="ftp.example.test", folder="/"),
        "smb": factories.connection("smb", name="share", host="fs.example.test", share="data", username="u"),
        "ssh": factories.connection("ssh", name="batch", host="batch.example.test", username="u"),
        "folder": factories.connection("folder", name="outbox", folder=str(outbox)),
    }


def owners(count: int) -> list:
    users = get_user_model().objects
    return [users.get_or_create(username=f"owner{i}")[0] for i in range(count)]


def build_world(tasks: int, runs_per_task: int, *, projects: int = 6, owner_count: int = 3, prefix: str = "") -> list[Task]:
    """`projects` projects spread over owners, `tasks` database tasks, each with finished runs, logs and a file."""
    conn = database_connection()
    people = owners(owner_count)
    made = [Project.objects.create(name=f"{prefix}Project {i:02d}", owner=people[i % owner_count], cron="0 6 * * *")
            for i in range(projects)]
    task_rows = Task.objects.bulk_create([
        Task(project=made[i % projects], name=f"{prefix}task-{i:04d}", source_kind="database", source_connection=conn,
             output_type="csv", enabled=i % 5 != 0)
        for i in range(tasks)
    ])
    CodeLocation.objects.bulk_create([
        CodeLocation(task=task, role=CodeRole.SOURCE, location="inline", text="select 1 as one") for task in task_rows
    ])
    now = timezone.now()
    runs = []
    for task in task_rows:
        for k in range(runs_per_task):
            start = now - timedelta(hours=runs_per_task - k)
            runs.append(Run(task=task, status=STATUSES[(task.pk + k) % len(STATUSES)], trigger=Trigger.SCHEDULE,
                            intended_at=start, due_at=start, started_at=start,
                            finished_at=start + timedelta(seconds=5 + k % 7), rows=k))
    runs = Run.objects.bulk_create(runs, batch_size=2000)
    RunLog.objects.bulk_create([RunLog(run=run, stage="finish", message=f"line of run {run.pk}") for run in runs], batch_size=2000)
    RunFile.objects.bulk_create([RunFile(run=run, name=f"out-{run.pk}.csv", size=10, rows=1, md5="0" * 32, sha256="0" * 64,
                                         stored=f"runs/{run.task_id}/{run.pk}/out.csv") for run in runs], batch_size=2000)
    state.refresh_latest(task.pk for task in task_rows)  # written in bulk, past runs/state.py
    return task_rows
