"""The pages of issue 18, used as a person does: read the form, type, post, follow the redirect.

A task's expected time and the tasks it runs after (a loop refused), a
project's missed-run policy, the dashboard's "Late" panel, a waiting run on
Task Details with "Stop waiting", and "Resume and catch up".
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from runs import firing
from runs.models import LateAlert, Run, RunStatus, SiteState
from tasks.models import Task
from tests import factories
from tests.form_support import browser_form, form_on
from tests.pages_support import database_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks(staff_runner):
    conn = database_connection()
    sales = factories.project("Sales", owner=staff_runner)
    reports = factories.project("Reports", owner=staff_runner, cron="0 6 * * *")
    a = factories.query_task(sales, conn, "select 1", name="A")
    c = factories.query_task(reports, conn, "select 1", name="C")
    return a, c


def messages_of(response) -> str:
    return response.content.decode().replace("&quot;", '"').replace("&#x27;", "'").replace("&gt;", ">")


def test_a_task_gets_an_expected_time_and_a_task_to_run_after_and_the_change_is_logged(client, staff_runner, tasks):
    a, c = tasks
    client.force_login(staff_runner)
    url = reverse("courier:task_edit", args=[c.pk])
    data = form_on(client, url)
    assert data["wait_deadline_minutes"] == "360" and "expected_by" in data
    response = client.post(url, {**data, "expected_by": "07:30", "wait_for": [a.pk], "wait_window_minutes": ""}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("courier:task_detail", args=[c.pk])
    c.refresh_from_db()
    assert c.expected_by == time(7, 30) and list(c.wait_for.all()) == [a]
    page = messages_of(response)
    assert "Should have succeeded by 07:30" in page and "waits until Sales/A succeeded (intended the same day)" in page
    change = LogEntry.objects.filter(object_id=str(c.pk)).latest("id").get_change_message()
    assert "should have succeeded by" in change.lower() and "run after" in change.lower()


def test_a_loop_of_waiting_tasks_is_refused_on_the_form(client, staff_runner, tasks):
    a, c = tasks
    c.wait_for.set([a])
    client.force_login(staff_runner)
    url = reverse("courier:task_edit", args=[a.pk])
    response = client.post(url, {**form_on(client, url), "wait_for": [c.pk]})
    assert response.status_code == 200
    assert "These tasks would wait for each other for ever: Sales/A → Reports/C → Sales/A." in messages_of(response)
    assert not Task.objects.get(pk=a.pk).wait_for.exists()


def test_a_project_gets_its_missed_run_policy(client, staff_runner, tasks):
    project = tasks[1].project
    client.force_login(staff_runner)
    url = reverse("courier:project_edit", args=[project.pk])
    data, _ = browser_form(client.get(url).content.decode(), "project_form")
    assert (data["missed_policy"], data["catch_up_minutes"]) == ("none", "360")
    response = client.post(url, {**data, "missed_policy": "all", "catch_up_minutes": "120"}, follow=True)
    assert response.status_code == 200
    project.refresh_from_db()
    assert (project.missed_policy, project.catch_up_minutes) == ("all", 120)
    assert "missed runs" in LogEntry.objects.filter(object_id=str(project.pk)).latest("id").get_change_message().lower()


def test_the_dashboard_shows_late_tasks_and_waiting_runs_and_task_details_stops_a_wait(client, staff_runner, tasks):
    a, c = tasks
    c.wait_for.set([a])
    c.expected_by = time(7, 0)
    c.save()
    LateAlert.objects.create(task=c, day=timezone.now().date(), expected_at=timezone.now() - timedelta(minutes=5),
                             late_mail="sent to ops@example.test")
    now = timezone.now()
    firing.fire(c.project.pk, "cron", now, now)
    client.force_login(staff_runner)
    page = messages_of(client.get(reverse("courier:dashboard")))
    late = page[page.index('id="late"'):page.index('id="running"')]
    assert "Late <span" in late and ">C</a>" in late and "sent to ops@example.test" in late
    assert "Sales/A (no run yet)" in late  # the waiting panel sits between the two

    detail = reverse("courier:task_detail", args=[c.pk])
    run = Run.objects.get(task=c)
    assert f"Run {run.pk} waits for Sales/A (no run yet)." in messages_of(client.get(detail))
    response = client.post(reverse("courier:task_action", args=[c.pk, "stop-waiting"]), follow=True)
    assert f"Cancelled run {run.pk}, which waited for other tasks." in messages_of(response)
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_resume_and_catch_up_on_the_scheduler_page(client, superuser, tasks):
    c = tasks[1]
    c.project.cron = "* * * * *"
    c.project.save()
    client.force_login(superuser)
    client.post(reverse("courier:scheduler_action", args=["pause"]))
    SiteState.objects.update(paused_at=timezone.now() - timedelta(minutes=3))
    page = messages_of(client.get(reverse("courier:scheduler")))
    assert "Resume and catch up" in page
    response = client.post(reverse("courier:scheduler_action", args=["resume-catch-up"]), follow=True)
    missed = Run.objects.filter(task=c, status=RunStatus.MISSED).count()
    assert missed >= 3
    assert f"the pause counts as downtime, {missed} missed run(s) recorded" in messages_of(response)
    assert not SiteState.get().paused
