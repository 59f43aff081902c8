"""Operations: the commands of SPEC §13 (exit codes, messages), pause, the reaper, and the admin actions."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from projects import scheduling
from runs import jobs, reaper, services, state
from runs.models import Run, RunStatus, SiteState, Trigger
from runs.runner import execute
from tests import factories
from tests.runhelpers import broken_task, drain, flaky_task, ok_task, source

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args) -> CommandError:
    with pytest.raises(CommandError) as caught:
        run_command(*args)
    return caught.value


@pytest.mark.parametrize("args, message", [
    (["run_project"], "the following arguments are required: name"),
    (["run_project", "Nope"], "No project “Nope”."),
    (["runs", "Nope/none"], "No task “Nope/none”"),
    (["runs", "--limit", "0"], "“0” is not a positive whole number"),
    (["runs", "--limit", "ten"], "“ten” is not a positive whole number"),
    (["reschedule"], "one of the arguments --all --project --task is required"),
    (["reschedule", "--all", "--project", "X"], "not allowed with argument --all"),
    (["reschedule", "--project", "Nope"], "No project “Nope”."),
    (["reschedule", "--task", "Nope/none"], "No task “Nope/none”"),
    (["cancel_retry"], "the following arguments are required: name"),
    (["cancel_retry", "Nope/none"], "No task “Nope/none”"),
    (["scheduler"], "the following arguments are required: action"),
    (["scheduler", "stop"], "invalid choice: 'stop'"),
    (["orphans", "--purge"], "unrecognized arguments: --purge"),
    (["reap_runs", "now"], "unrecognized arguments: now"),
])
def test_bad_input_exits_2_with_a_clear_message(args, message):
    error = refused(*args)
    assert error.returncode == 2
    assert message in str(error)


def test_command_line_error_is_one_line_on_stderr_with_exit_code_2():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "manage.py", "scheduler", "stop"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["CommandError: argument action: invalid choice: 'stop' (choose from 'pause', 'resume', 'status')"]


def test_cancel_retry_without_a_pending_retry_exits_1(sqlite_odbc):
    task = ok_task(factories.project(), source(sqlite_odbc), "orders")
    error = refused("cancel_retry", str(task))
    assert error.returncode == 1 and str(error) == f"{task} has no pending retry."


def test_cancel_retry_command_cancels(sqlite_odbc):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1)
    services.run_now(task)
    drain()
    out = run_command("cancel_retry", str(task))
    assert out.startswith(f"Cancelled the retry of {task} (run ")
    assert Run.objects.filter(task=task, status=RunStatus.CANCELLED).count() == 1


def test_runs_lists_newest_first_as_json(sqlite_odbc):
    project = factories.project(name="P")
    conn = source(sqlite_odbc)
    first, second = ok_task(project, conn, "a"), ok_task(project, conn, "b")
    services.run_now(first)
    services.run_now(second)
    drain()
    rows = json.loads(run_command("runs", "P", "--json"))
    assert [(row["task"], row["status"], row["trigger"], row["attempt"], row["rows"]) for row in rows] == [
        ("P/b", "succeeded", "manual", 1, 1), ("P/a", "succeeded", "manual", 1, 1),
    ]
    assert set(rows[0]) == {"run", "task", "status", "trigger", "attempt", "intended", "due", "started", "finished", "rows", "error",
                            "waiting_for"}
    assert [row["task"] for row in json.loads(run_command("runs", "P/a", "--json", "--limit", "5"))] == ["P/a"]
    assert len(json.loads(run_command("runs", "--json", "--limit", "1"))) == 1
    assert "P/b" in run_command("runs")


def test_run_project_wait_runs_a_sequence_here_and_reports(sqlite_odbc):
    project = factories.project(name="Seq", sequence=True)
    conn = source(sqlite_odbc)
    ok_task(project, conn, "one", rank=1)
    ok_task(project, conn, "two", rank=2)
    out = run_command("run_project", "Seq", "--wait")
    assert "Run " in out and "of Seq/one succeeded" in out and "of Seq/two succeeded" in out
    assert [run.status for run in Run.objects.order_by("id")] == [RunStatus.SUCCEEDED] * 2


def test_run_project_wait_exits_1_when_a_run_fails(sqlite_odbc):
    project = factories.project(name="Bad")
    broken_task(project, source(sqlite_odbc), "broken")
    error = refused("run_project", "Bad", "--wait")
    assert error.returncode == 1 and "1 of 1 run(s) of Bad did not succeed" in str(error)


def test_run_project_queues_and_a_project_without_enabled_tasks_fails(sqlite_odbc):
    project = factories.project(name="Q")
    ok_task(project, source(sqlite_odbc), "one")
    assert "of Q/one queued" in run_command("run_project", "Q")
    assert Run.objects.get().trigger == Trigger.COMMAND
    services.disable_all(project)
    error = refused("run_project", "Q")
    assert error.returncode == 1 and str(error) == "Project Q has no enabled tasks."


def test_pause_is_kept_in_the_database_and_firing_does_nothing_while_paused(sqlite_odbc):
    project = factories.project(name="Nightly", cron="0 6 * * *", timezone="Europe/Amsterdam")
    ok_task(project, source(sqlite_odbc), "orders")
    assert "paused" in run_command("scheduler", "pause")
    assert SiteState.objects.get(pk=1).paused
    status = run_command("scheduler", "status")
    assert status.startswith("Scheduler: PAUSED since ")
    assert jobs.fire_project(project.pk, "cron", timezone.now().isoformat()) == "paused: nothing started"
    assert not Run.objects.exists()
    assert Schedule.objects.get(name=f"courier:project:{project.pk}:cron").repeats == 1  # still armed for resume
    run_command("scheduler", "resume")
    assert "Scheduler: active (not paused)." in run_command("scheduler", "status")
    assert jobs.fire_project(project.pk, "cron", timezone.now().isoformat()).startswith("1 run(s)")


def test_scheduler_status_shows_next_five_fire_times_with_dst_warnings():
    project = factories.project(name="Amsterdam", cron="30 2 * * *", timezone="Europe/Amsterdam")
    factories.project(name="Idle")
    out = run_command("scheduler", "status")
    lines = out.splitlines()
    at = lines.index("Amsterdam (Europe/Amsterdam): cron “30 2 * * *”")
    assert len([line for line in lines[at + 1:at + 6] if line.endswith("(cron)")]) == 5
    assert "Idle (UTC): no active trigger" in out
    assert "Reaper: in every worker of the cluster, every 25 s; a run silent for 75 s is failed as worker lost." in out
    assert "Orphaned schedule entries: 0." in out
    # The gap warning appears when the next five include the spring-forward day.
    warnings = scheduling.schedule_warnings(project, now=datetime(2021, 3, 25, tzinfo=dt_timezone.utc))
    assert warnings and "clocks go forward" in warnings[0]


def test_reaper_fails_silent_runs_as_worker_lost_and_applies_the_retry_policy(sqlite_odbc):
    project = factories.project()
    conn = source(sqlite_odbc)
    task = flaky_task(project, conn, "flaky", retry_max=1, retry_delay_minutes=2)
    silent = state.create_run(task, Trigger.SCHEDULE)
    lively = state.create_run(ok_task(project, conn, "busy"), Trigger.SCHEDULE)
    now = timezone.now()
    Run.objects.filter(pk=silent.pk).update(status=RunStatus.RUNNING, started_at=now - timedelta(minutes=10),
                                            heartbeat_at=now - timedelta(minutes=5), worker="host:123")
    Run.objects.filter(pk=lively.pk).update(status=RunStatus.RUNNING, started_at=now - timedelta(minutes=10), heartbeat_at=now)

    reaped = reaper.reap(now=now)
    assert [run.pk for run in reaped] == [silent.pk]
    silent.refresh_from_db()
    assert silent.status == RunStatus.FAILED and silent.error.startswith("Worker lost: host:123 gave no sign of life since")
    retry = Run.objects.get(retry_of=silent)
    assert retry.status == RunStatus.RETRY_SCHEDULED and retry.due_at >= now + timedelta(minutes=2)
    assert Run.objects.get(pk=lively.pk).status == RunStatus.RUNNING
    assert "0 run(s) marked as failed" in run_command("reap_runs")


def test_task_details_controls_and_the_project_page(client, superuser, sqlite_odbc):
    project = factories.project(name="Nightly", cron="0 6 * * *", timezone="Europe/Amsterdam")
    task = flaky_task(project, source(sqlite_odbc), "flaky", retry_max=1)
    services.run_now(task)
    drain()
    client.force_login(superuser)

    def control(action: str) -> None:
        assert client.post(reverse("courier:task_action", args=[task.pk, action])).status_code == 302

    control("duplicate")
    assert project.tasks.filter(name="flaky (copy)", enabled=False).exists()
    control("cancel-retry")
    assert Run.objects.filter(task=task, status=RunStatus.CANCELLED).count() == 1
    Schedule.objects.filter(name__startswith="courier:project:").delete()
    control("reschedule")
    assert Schedule.objects.filter(name=f"courier:project:{project.pk}:cron").exists()

    page = client.get(reverse("courier:project_detail", args=[project.pk])).content.decode()
    assert page.split('class="fire-times"', 1)[1].split("</ol>", 1)[0].count("(cron)") == 5


def test_a_second_delivery_or_a_cancelled_run_is_not_run_again(sqlite_odbc, superuser):
    project, db = factories.project(), source(sqlite_odbc)
    task = ok_task(project, db, "orders")
    run = services.run_now(task)
    assert execute(run.pk) is not None
    assert execute(run.pk) is None  # the queue delivered the message twice: the claim finds it taken
    assert Run.objects.get(pk=run.pk).log_lines.filter(message__startswith="Attempt 1").count() == 1
    # A waiting run is cancelled the one way people can: Cancel Retry. Its message may still arrive.
    flaky = flaky_task(project, db, "flaky", retry_max=1)
    failed = services.run_now(flaky)
    execute(failed.pk)
    pending = Run.objects.get(retry_of=failed)
    assert services.cancel_retry(flaky, user=superuser).pk == pending.pk
    assert execute(pending.pk) is None
    pending.refresh_from_db()
    assert (pending.status, pending.started_at, pending.log_lines.filter(message__startswith="Attempt").count()) == (RunStatus.CANCELLED, None, 0)
