"""Project pages: details with the schedule in words and next fire times, the controls, New/Edit/Delete."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from projects.models import Project
from runs import state
from runs.models import Run, RunStatus, Trigger
from tasks.models import Task
from tests import factories
from tests.pages_support import database_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(staff_runner):
    project = factories.project("Nightly", owner=staff_runner, cron="0 6 * * 1-5", timezone="Europe/Amsterdam")
    conn = database_connection()
    for name in ("a", "b", "c"):
        factories.query_task(project, conn, "select 1", name=name, enabled=name != "c")
    return project


def page(client, project) -> str:
    response = client.get(reverse("courier:project_detail", args=[project.pk]))
    assert response.status_code == 200
    return response.content.decode()


def post(client, project, action):
    return client.post(reverse("courier:project_action", args=[project.pk, action]))


def test_details_show_the_schedule_in_words_the_next_fire_times_and_the_tasks(client, staff_viewer, project):
    state.create_run(project.tasks.get(name="a"), Trigger.SCHEDULE, status=RunStatus.FAILED)
    client.force_login(staff_viewer)
    html = page(client, project)
    assert "At 06:00, Monday through Friday (Europe/Amsterdam)" in html
    times = re.findall(r'<time datetime="([^"]+)">', html.split('class="fire-times"')[1].split("</ol>")[0])
    assert len(times) == 5
    assert all(t.endswith(("+01:00", "+02:00")) and "T06:00:00" in t for t in times)  # in the project's own zone
    tasks = html.split('id="tasks"')[1]
    assert all(f">{name}</a>" in tasks for name in "abc")
    assert "status-failed" in tasks.split(">a</a>")[1].split("</tr>")[0]
    assert "— (disabled)" in tasks.split(">c</a>")[1].split("</tr>")[0]


def test_a_schedule_warning_is_shown(client, staff_viewer, project):
    Project.objects.filter(pk=project.pk).update(
        once_at=timezone.now() + timedelta(days=10), end_at=timezone.now() + timedelta(days=5))
    client.force_login(staff_viewer)
    assert "is outside the active window; it will not fire" in page(client, project)


def test_run_all_starts_every_enabled_task_and_is_logged(client, staff_runner, project):
    client.force_login(staff_runner)
    post(client, project, "run-all")
    assert sorted(Run.objects.values_list("task__name", flat=True)) == ["a", "b"]
    assert Run.objects.filter(trigger=Trigger.MANUAL, started_by=staff_runner).count() == 2
    entry = LogEntry.objects.get(object_id=str(project.pk))
    assert "2 run(s) queued" in entry.get_change_message()
    assert "2 run(s) queued" in page(client, project).split('id="action-history"')[1]


def test_enable_all_and_disable_all(client, staff_runner, project):
    client.force_login(staff_runner)
    post(client, project, "enable-all")
    assert set(project.tasks.values_list("enabled", flat=True)) == {True}
    post(client, project, "disable-all")
    assert set(project.tasks.values_list("enabled", flat=True)) == {False}


def test_duplicate_copies_the_project_with_disabled_tasks(client, superuser, project):
    client.force_login(superuser)
    response = post(client, project, "duplicate")
    copy = Project.objects.get(name="Nightly (copy)")
    assert response["Location"] == reverse("courier:project_detail", args=[copy.pk])
    assert sorted(copy.tasks.values_list("name", "enabled")) == [("a", False), ("b", False), ("c", False)]


def test_controls_are_refused_without_permission(client, staff_viewer, project):
    client.force_login(staff_viewer)
    for action in ("run-all", "enable-all", "disable-all", "duplicate", "reschedule"):
        assert post(client, project, action).status_code == 403, action
    assert not Run.objects.exists()
    assert client.get(reverse("courier:project_action", args=[project.pk, "run-all"])).status_code == 405


def project_form(**overrides) -> dict:
    data = {"name": "Weekly", "description": "", "owner": "", "timezone": "Europe/Amsterdam", "cron": "0 7 * * 1",
            "interval_every": "", "interval_unit": "", "once_at": "", "start_at": "", "end_at": "",
            "param-TOTAL_FORMS": "1", "param-INITIAL_FORMS": "0", "param-MIN_NUM_FORMS": "0", "param-MAX_NUM_FORMS": "1000",
            "param-0-key": "{client}", "param-0-entered_value": "acme", "param-0-position": "0"}
    data.update(overrides)
    return data


def test_a_new_project_is_saved_with_its_parameters_and_schedule(client, staff_runner):
    from django_q.models import Schedule

    client.force_login(staff_runner)
    response = client.post(reverse("courier:project_new"), project_form(owner=staff_runner.pk))
    project = Project.objects.get(name="Weekly")
    assert response["Location"] == reverse("courier:project_detail", args=[project.pk])
    assert project.parameters.get().value == "acme"
    assert Schedule.objects.filter(name=f"courier:project:{project.pk}:cron").exists()
    assert LogEntry.objects.get(object_id=str(project.pk)).is_addition()


@pytest.mark.parametrize("overrides, message", [
    ({"cron": "0 7 * *"}, "“0 7 * *” has 4 fields; a cron trigger needs five (minute hour day-of-month month day-of-week)."),
    ({"cron": "0 25 * * *"}, "“0 25 * * *”: the hour field “25” is not valid; it takes 0-23, with lists (1,15), ranges (1-5) and steps (*/10)."),
    ({"interval_every": "5"}, "Give both the number and the unit of the interval, or neither."),
    ({"interval_every": "0", "interval_unit": "hours"}, "The interval must be a positive whole number."),
    ({"timezone": "Mars/Olympus"}, "Unknown time zone “Mars/Olympus”; use an IANA name such as Europe/Amsterdam."),
    ({"start_at": "2030-01-02T00:00", "end_at": "2030-01-01T00:00"}, "“Active until” must be after “active from”."),
    ({"name": "Nightly"}, "Project with this Name already exists."),
])
def test_bad_project_values_get_clear_errors(client, staff_runner, project, overrides, message):
    client.force_login(staff_runner)
    response = client.post(reverse("courier:project_new"), project_form(owner=staff_runner.pk, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert Project.objects.count() == 1


def test_editing_a_project_shows_its_fire_times_and_logs_the_change(client, staff_runner, project):
    client.force_login(staff_runner)
    html = client.get(reverse("courier:project_edit", args=[project.pk])).content.decode()
    assert html.count("<time datetime=") == 5
    client.post(reverse("courier:project_edit", args=[project.pk]),
                project_form(name="Nightly", owner=staff_runner.pk, cron="15 6 * * *", **{"param-0-key": "k"}))
    project.refresh_from_db()
    assert project.cron == "15 6 * * *"
    assert "Cron trigger" in LogEntry.objects.get(object_id=str(project.pk)).get_change_message()


def test_deleting_a_project_asks_first(client, superuser, project):
    client.force_login(superuser)
    html = client.get(reverse("courier:project_delete", args=[project.pk])).content.decode()
    assert "its 3 task(s)" in html
    client.post(reverse("courier:project_delete", args=[project.pk]))
    assert not Project.objects.exists() and not Task.objects.exists()
