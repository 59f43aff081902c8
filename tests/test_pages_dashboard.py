"""Dashboard (errored, running, next runs, the 24-hour run plan, orphans) and the superusers' Scheduler tools."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from runs import state
from runs.models import Run, RunStatus, SiteState, Trigger
from tests import factories
from tests.pages_support import database_connection

pytestmark = pytest.mark.django_db


def finished(task, status) -> Run:
    now = timezone.now()
    return state.create_run(task, Trigger.SCHEDULE, status=status, intended_at=now, due_at=now, started_at=now, finished_at=now)


@pytest.fixture
def tasks(staff_runner):
    conn = database_connection()
    hourly = factories.project("Hourly", owner=staff_runner, cron="0 * * * *")
    manual = factories.project("Manual", owner=staff_runner)
    made = {name: factories.query_task(hourly, conn, "select 1", name=name) for name in ("ok", "broken", "off")}
    made["off"].enabled = False
    made["off"].save()
    made["adhoc"] = factories.query_task(manual, conn, "select 1", name="adhoc")
    finished(made["ok"], RunStatus.FAILED)
    finished(made["ok"], RunStatus.SUCCEEDED)  # the latest run counts
    finished(made["broken"], RunStatus.FAILED)
    finished(made["adhoc"], RunStatus.FAILED)
    return made


def dashboard(client) -> str:
    response = client.get(reverse("courier:dashboard"))
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, ident: str) -> str:
    return html.split(f'id="{ident}"')[1].split('<div class="module"')[0]


def test_errored_tasks_are_those_whose_latest_run_failed(client, staff_viewer, tasks):
    client.force_login(staff_viewer)
    errored = section(dashboard(client), "errored")
    assert ">broken</a>" in errored and ">adhoc</a>" in errored and ">ok</a>" not in errored
    assert "Run all errored" not in errored  # a viewer may not run


def test_run_all_errored_starts_each_errored_task(client, staff_runner, tasks):
    client.force_login(staff_runner)
    response = client.post(reverse("courier:run_errored"))
    assert response["Location"] == reverse("courier:dashboard")
    manual = Run.objects.filter(trigger=Trigger.MANUAL)
    assert sorted(manual.values_list("task__name", flat=True)) == ["adhoc", "broken"]
    assert LogEntry.objects.filter(object_id=str(tasks["broken"].pk)).exists()


def test_running_tasks_are_listed(client, staff_viewer, tasks):
    run = finished(tasks["adhoc"], RunStatus.RUNNING)
    client.force_login(staff_viewer)
    running = section(dashboard(client), "running")
    assert "Manual/adhoc" in running and f"<td>{run.pk}</td>" in running


def test_next_runs_and_the_run_plan_of_the_next_24_hours(client, staff_viewer, tasks):
    client.force_login(staff_viewer)
    html = dashboard(client)
    next_runs = section(html, "next-runs")
    assert ">Hourly</a>" in next_runs and "broken, ok" in next_runs and "off" not in next_runs
    plan = section(html, "run-plan")
    bars = re.findall(r'<rect [^>]*class="bar (plan|plan-empty)"><title>([^<]*)</title>', plan)
    assert len(bars) == 25  # this hour's rest, 23 whole hours, and the start of the hour 24 hours on
    busy = [title for css, title in bars if css == "plan"]
    assert len(busy) == 24 and all("2 run(s): Hourly/broken, Hourly/ok" in title for title in busy)
    assert "(48 runs)" in plan  # 2 enabled tasks × the 24 hourly firings of the next 24 hours


def test_orphaned_schedules_are_listed_and_superusers_can_delete_them(client, superuser, tasks):
    orphan = Schedule.objects.create(name="courier:project:99999:cron", func="runs.jobs.fire_project", args="(99999, 'cron')",
                                     schedule_type=Schedule.ONCE, repeats=1, next_run=timezone.now() + timedelta(hours=1))
    client.force_login(superuser)
    assert "courier:project:99999:cron" in section(dashboard(client), "orphans")
    client.post(reverse("courier:scheduler_action", args=["delete-orphans"]))
    assert not Schedule.objects.filter(pk=orphan.pk).exists()
    assert "Deleted 1 orphaned schedule entry." in LogEntry.objects.get().get_change_message()


def test_scheduler_tools_are_for_superusers_only(client, staff_runner):
    client.force_login(staff_runner)
    assert client.get(reverse("courier:scheduler")).status_code == 403
    assert client.post(reverse("courier:scheduler_action", args=["pause"])).status_code == 403
    assert SiteState.get().paused is False
    assert "Scheduler tools" not in dashboard(client)


def test_pause_and_resume_are_kept_and_logged(client, superuser, tasks):
    client.force_login(superuser)
    client.post(reverse("courier:scheduler_action", args=["pause"]))
    site = SiteState.get()
    assert site.paused and site.paused_by == superuser
    assert "The scheduler is paused" in dashboard(client)
    html = client.get(reverse("courier:scheduler")).content.decode()
    assert "Paused by root" in html and "Paused the scheduler" in html.split('id="action-history"')[1]
    client.post(reverse("courier:scheduler_action", args=["resume"]))
    assert SiteState.get().paused is False


def test_reschedule_all_rebuilds_the_schedules(client, superuser, tasks):
    Schedule.objects.all().delete()
    client.force_login(superuser)
    client.post(reverse("courier:scheduler_action", args=["reschedule-all"]))
    hourly = tasks["ok"].project_id
    assert Schedule.objects.filter(name=f"courier:project:{hourly}:cron").exists()


def test_reset_stuck_runs_fails_a_silent_run(client, superuser, tasks):
    stuck = finished(tasks["adhoc"], RunStatus.RUNNING)
    Run.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1), finished_at=None)
    client.force_login(superuser)
    html = client.get(reverse("courier:scheduler")).content.decode()
    assert 'class="stale"' in html
    client.post(reverse("courier:scheduler_action", args=["reset-stuck"]))
    stuck.refresh_from_db()
    assert stuck.status == RunStatus.FAILED
    assert "Marked 1 stuck run(s) as failed" in LogEntry.objects.get().get_change_message()


def test_unknown_actions_are_refused_with_a_message(client, superuser, tasks):
    client.force_login(superuser)
    response = client.post(reverse("courier:scheduler_action", args=["explode"]), follow=True)
    assert "Unknown scheduler action “explode”." in response.content.decode()


def test_tasks_waiting_for_a_retry_are_listed(client, staff_viewer, tasks):
    """Issue 15.10: a task whose run failed and waits for its retry was on no list of the dashboard."""
    failed = Run.objects.get(task=tasks["broken"])
    Run.objects.filter(pk=failed.pk).update(error_stage="source", error="Connection refused by db:5432")
    due = timezone.now() + timedelta(minutes=12)
    retry = Run.objects.create(task=tasks["broken"], trigger=Trigger.RETRY, attempt=2, retry_of=failed,
                               status=RunStatus.RETRY_SCHEDULED, intended_at=failed.intended_at, due_at=due)
    client.force_login(staff_viewer)
    waiting = section(dashboard(client), "retries")
    row = waiting.split(">Hourly/broken</a>")[1].split("</tr>")[0]
    assert f"<td>{retry.pk}</td>" in row and "<td>2</td>" in row
    assert re.search(r"in 1[12] min", row) and "[source] Connection refused by db:5432" in row
