"""Each task's latest run is kept on its LatestRun row, in step with every change of a run (runs/state.py).

The lists, the status filter and the Dashboard read a task's status from that
row (issue 20: searching each task's runs for the newest cost 230 ms of the
filtered list at 10,000 tasks). So every way a run is made or changes state
must update it: a start, a claim, a finish, a failed run's retry, a cancel,
the reaper, a postponed retry, pruning, a superuser's delete — and the
migration fills it for the runs already there. A last test reads the code:
nothing outside runs/state.py writes a run's status.
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from runs import reaper, services, state
from runs.history import prune
from runs.models import LatestRun, Run, RunStatus, Trigger
from runs.runner import execute
from tasks.models import CodeLocation
from tests import factories
from tests.code_support import parse, parse_file

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def task(sqlite_odbc):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    return factories.query_task(factories.project(), source, "select 1 as one", output_name="latest.csv")


def latest(task) -> tuple[int, str] | None:
    row = LatestRun.objects.filter(task=task).first()
    return (row.run_id, row.status) if row else None


def listed_as(client, task, status: str) -> bool:
    """Whether All Tasks, filtered by last-run status as a person picks it, lists the task."""
    html = client.get(reverse("courier:task_list") + f"?status={status}").content.decode()
    return f'href="{reverse("courier:task_detail", args=[task.pk])}"' in html


def break_query(task) -> None:
    CodeLocation.objects.filter(task=task).update(text="select broken syntax from")


def test_a_run_is_the_tasks_status_from_its_start_through_its_claim_to_its_end(task, client, superuser):
    client.force_login(superuser)
    assert latest(task) is None and listed_as(client, task, "never")
    run = services.run_now(task, queue=False)
    assert latest(task) == (run.pk, RunStatus.QUEUED) and listed_as(client, task, "queued")
    seen = []
    execute(run.pk, echo=lambda line: seen.append(latest(task)))
    assert (run.pk, RunStatus.RUNNING) in seen
    assert latest(task) == (run.pk, RunStatus.SUCCEEDED) and listed_as(client, task, "succeeded")
    assert not listed_as(client, task, "never")
    break_query(task)
    failed = services.run_now(task, queue=False)
    execute(failed.pk)
    assert latest(task) == (failed.pk, RunStatus.FAILED) and listed_as(client, task, "failed")
    assert not listed_as(client, task, "succeeded")
    row = LatestRun.objects.get(task=task)
    failed.refresh_from_db()
    assert row.at == failed.started_at


def test_a_busy_task_records_its_skipped_run_as_its_latest(task):
    first = services.run_now(task, queue=False)
    skipped = services.run_now(task, queue=False)
    assert skipped.status == RunStatus.SKIPPED
    assert latest(task) == (skipped.pk, RunStatus.SKIPPED)
    execute(first.pk)  # the older run ends: the newer skipped run stays the task's status
    assert latest(task) == (skipped.pk, RunStatus.SKIPPED)


def test_a_retry_is_scheduled_postponed_started_and_cancelled_in_step(task, superuser):
    task.retry_max, task.retry_delay_minutes, task.retry_on_every_failure = 2, 1, True  # the broken query fails permanently
    task.save()
    break_query(task)
    failed = services.run_now(task, queue=False)
    execute(failed.pk)
    retry = Run.objects.get(retry_of=failed)
    assert latest(task) == (retry.pk, RunStatus.RETRY_SCHEDULED)
    assert LatestRun.objects.get(task=task).at == retry.due_at
    state.postpone(retry, retry.due_at + timedelta(minutes=5))
    assert LatestRun.objects.get(task=task).at == Run.objects.get(pk=retry.pk).due_at
    start = state.start_run(task, Trigger.RETRY, retry=retry, queue=False)
    assert start.run == retry and latest(task) == (retry.pk, RunStatus.QUEUED)
    Run.objects.filter(pk=retry.pk).update(status=RunStatus.RETRY_SCHEDULED)  # back to waiting, to cancel it by hand
    services.cancel_retry(task, user=superuser)
    assert latest(task) == (retry.pk, RunStatus.CANCELLED)


def test_the_reaper_fails_a_silent_run_and_the_task_shows_it(task):
    run = state.claim(services.run_now(task, queue=False).pk)
    long_ago = timezone.now() - timedelta(hours=1)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago, started_at=long_ago)
    assert latest(task) == (run.pk, RunStatus.RUNNING)
    assert [r.pk for r in reaper.reap()] == [run.pk]
    assert latest(task) == (run.pk, RunStatus.FAILED)


def test_when_the_newest_run_is_pruned_or_deleted_the_one_before_it_is_the_status(task, client, superuser):
    old = timezone.now() - timedelta(days=100)
    runs = [state.create_run(task, Trigger.MANUAL, status=status, intended_at=old, due_at=old, started_at=old, finished_at=old)
            for status in (RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.CANCELLED)]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(queued_at=old)
    assert latest(task) == (runs[2].pk, RunStatus.CANCELLED)
    client.force_login(superuser)
    response = client.post(reverse("admin:runs_run_delete", args=[runs[2].pk]), {"post": "yes"}, follow=True)
    assert response.status_code == 200 and not Run.objects.filter(pk=runs[2].pk).exists()
    assert latest(task) == (runs[1].pk, RunStatus.SUCCEEDED)
    prune(days=30, keep=0)
    assert not Run.objects.filter(task=task).exists()
    assert latest(task) is None and listed_as(client, task, "never")


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_each_tasks_latest_run_from_the_runs_already_there(sqlite_odbc):
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    latest_run = next(key for key in graph.nodes if key[0] == "runs" and key[1].endswith("_latest_run"))
    previous = next(key for key in graph.node_map[latest_run].parents if key[0] == "runs")
    before = [node for node in graph.leaf_nodes() if node[0] != "runs"] + [previous]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Task, Run_ = apps.get_model("tasks", "Task"), apps.get_model("runs", "Run")
    project = apps.get_model("projects", "Project").objects.create(name="Old", owner_id=factories.project().owner_id)
    busy, idle, _never = (Task.objects.create(project=project, name=name) for name in ("busy", "idle", "never"))
    now = timezone.now()
    made = {}
    for task, statuses in ((busy, ["succeeded", "failed", "running"]), (idle, ["failed", "succeeded"])):
        for status in statuses:
            made[task.name] = Run_.objects.create(task=task, status=status, trigger="manual", intended_at=now,
                                                  due_at=now - timedelta(minutes=1), started_at=now if status == "running" else None)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    rows = {row.task.name: (row.run_id, row.status, row.at) for row in LatestRun.objects.select_related("task")}
    assert rows == {
        "busy": (made["busy"].pk, RunStatus.RUNNING, now),
        "idle": (made["idle"].pk, RunStatus.SUCCEEDED, now - timedelta(minutes=1)),
    }


# --------------------------------------------------------------------------
# Nothing else writes a run's status
# --------------------------------------------------------------------------

WRITING_CALLS = {"update", "create", "get_or_create", "update_or_create", "Run"}


def status_writes(tree: ast.AST) -> list[int]:
    """Lines that set a run status: `x.status = RunStatus.…`, or status=RunStatus.… given to update/create/Run(…)."""
    def is_run_status(node) -> bool:
        return any(isinstance(n, ast.Name) and n.id == "RunStatus" for n in ast.walk(node))

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and is_run_status(node.value):
            found += [node.lineno for t in node.targets for e in ast.walk(t) if isinstance(e, ast.Attribute) and e.attr == "status"]
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in WRITING_CALLS and any(k.arg == "status" and is_run_status(k.value) for k in node.keywords):
                found.append(node.lineno)
    return found


def test_the_reader_finds_each_way_of_writing_a_status():
    code = ("run.status = RunStatus.FAILED\nRun.objects.filter(pk=1).update(status=RunStatus.QUEUED)\n"
            "Run.objects.create(task=t, status=RunStatus.SKIPPED)\nRun(status=RunStatus.RUNNING)\n"
            "run.status, run.rows = RunStatus.SUCCEEDED, 1\n"
            "Run.objects.filter(status=RunStatus.RUNNING)\nstate.create_run(t, 'x', status=RunStatus.SKIPPED)\n"
            "delivery.status = DeliveryStatus.SENT\n")
    assert sorted(status_writes(parse(code))) == [1, 2, 3, 4, 5]


def test_only_the_run_state_module_writes_a_runs_status():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for app in ("connections", "projects", "tasks", "runs", "etlsite")
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts and path != ROOT / "runs" / "state.py"
        for line in status_writes(parse_file(path))
    ]
    assert not found, "A run's status changes only in runs/state.py (which keeps LatestRun in step):\n" + "\n".join(found)
