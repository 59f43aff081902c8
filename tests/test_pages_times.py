"""Times on the pages: always with their zone (the project's), one format on Courier and admin pages,
a relative hint where it helps, the dashboard's run plan on the right hours, and a word while paused."""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from django.urls import reverse

from projects import upcoming
from runs import services, state
from runs import views as run_views
from runs.models import Run, RunStatus, Trigger
from tests import factories
from tests.pages_support import database_connection

pytestmark = pytest.mark.django_db

UTC = dt_timezone.utc
# A zone without daylight saving, so that the tests hold on any date.
TOKYO = "Asia/Tokyo"


@pytest.fixture
def tokyo_task(staff_runner):
    project = factories.project("Tokyo", owner=staff_runner, cron="25 16 * * *", timezone=TOKYO)
    return factories.query_task(project, database_connection(), "select 1", name="orders")


def finished_run(task, started: datetime) -> Run:
    return state.create_run(task, Trigger.SCHEDULE, status=RunStatus.SUCCEEDED, intended_at=started,
                            due_at=started, started_at=started, finished_at=started.replace(minute=started.minute + 1))


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_task_lists_show_the_next_run_in_the_projects_zone_with_a_relative_hint(client, staff_runner, tokyo_task):
    client.force_login(staff_runner)
    for url in (reverse("courier:task_list"), reverse("courier:my_tasks"), reverse("courier:project_detail", args=[tokyo_task.project_id])):
        row = page(client, url).split(">orders</a>")[1].split("</tr>")[0]
        assert re.search(r">\d{4}-\d\d-\d\d 16:25 JST</time>", row), url
        assert re.search(r"in (\d+ h|\d+ min)\b", row), url
        assert "paused" not in row


def test_run_history_shows_times_in_the_projects_zone(client, staff_runner, tokyo_task):
    finished_run(tokyo_task, datetime(2026, 11, 29, 10, 20, tzinfo=UTC))
    client.force_login(staff_runner)
    html = page(client, reverse("courier:task_detail", args=[tokyo_task.pk]))
    runs = html.split('id="runs"')[1].split('id="files"')[0]
    assert ">2026-11-29 19:20 JST</time>" in runs
    tasks = page(client, reverse("courier:task_list"))
    assert ">2026-11-29 19:20 JST</time>" in tasks.split(">orders</a>")[1].split("</tr>")[0]  # last run at


def test_admin_pages_use_the_same_format_with_the_zone(client, superuser, tokyo_task):
    run = finished_run(tokyo_task, datetime(2026, 11, 29, 10, 20, tzinfo=UTC))
    client.force_login(superuser)
    changelist = page(client, reverse("admin:runs_run_changelist"))
    assert "2026-11-29 10:20 UTC" in changelist and "Nov. 29, 2026" not in changelist
    change = page(client, reverse("admin:runs_run_change", args=[run.pk]))
    assert "2026-11-29 10:20 UTC" in change and "a.m." not in change


def test_the_run_plan_counts_from_now_not_from_the_start_of_the_hour(client, staff_runner, monkeypatch):
    """Issue 15.7: at Sunday 11:30 UTC a daily 11:25 run had already gone, yet the plan showed it at
    "Sun 11:00" and left out Monday 11:25, the next run, which is within 24 hours."""
    now = datetime(2026, 11, 29, 11, 30, tzinfo=UTC)  # a Sunday
    monkeypatch.setattr(run_views.timezone, "now", lambda: now)
    project = factories.project("Daily", owner=staff_runner, cron="25 11 * * *", timezone="UTC")
    factories.query_task(project, database_connection(), "select 1", name="orders")
    client.force_login(staff_runner)
    html = page(client, reverse("courier:dashboard"))
    plan = html.split('id="run-plan"')[1].split('id="orphans"')[0]
    hours = re.findall(r'<td class="nowrap"><time[^>]*>([^<]+)</time></td><td>(\d+)</td>', plan)
    assert hours == [("Mon 2026-11-30 11:00 UTC", "1")]
    assert "(1 run)" in plan
    next_runs = html.split('id="next-runs"')[1].split('id="run-plan"')[0]
    assert ">Mon 2026-11-30 11:25 UTC</time>" in next_runs


def test_the_plan_of_a_day_holds_every_firing_after_now_and_none_before(staff_runner):
    now = datetime(2026, 11, 29, 11, 30, tzinfo=UTC)
    project = factories.project("Hourly", owner=staff_runner, cron="25 * * * *", timezone="UTC")
    plan = upcoming.day_plan([(project, ["a", "b"])], now)
    times = [at for at, _, _ in plan.firings]
    assert times[0] == datetime(2026, 11, 29, 12, 25, tzinfo=UTC) and times[-1] == datetime(2026, 11, 30, 11, 25, tzinfo=UTC)
    assert len(times) == 24 and sum(len(names) for names in plan.hours) == 48


def test_while_paused_the_next_run_times_say_so(client, superuser, tokyo_task):
    services.pause_scheduler(user=superuser)
    client.force_login(superuser)
    for url in (reverse("courier:task_list"), reverse("courier:project_detail", args=[tokyo_task.project_id])):
        row = page(client, url).split(">orders</a>")[1].split("</tr>")[0]
        assert "16:25 JST" in row and "scheduler paused" in row, url
    detail = page(client, reverse("courier:project_detail", args=[tokyo_task.project_id]))
    assert "scheduler paused" in detail.split('id="schedule"')[1].split('id="parameters"')[0]
    dashboard = page(client, reverse("courier:dashboard"))
    assert "scheduler paused" in dashboard.split('id="next-runs"')[1].split('id="run-plan"')[0]
