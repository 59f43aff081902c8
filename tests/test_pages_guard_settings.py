"""The guard settings on the pages, as a person uses them: GET the edit form, type, POST, follow, read Task Details."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from projects.models import Project
from tasks.models import GuardAction, Task
from tests import factories
from tests.form_support import browser_form, form_on
from tests.pages_support import database_connection, sftp_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(staff_runner):
    made = factories.query_task(factories.project("Nightly", owner=staff_runner), database_connection(), "select 1 as one")
    factories.destination(made, sftp_connection(), folder="in")
    return made


def errors_of(html: str) -> list[str]:
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>(.*?)</li>', html)


def test_guard_done_file_and_quiet_alerts_are_set_on_the_task_page_and_summarised(client, staff_runner, task):
    client.force_login(staff_runner)
    url = reverse("courier:task_edit", args=[task.pk])
    data = form_on(client, url)
    assert data["guard_action"] == "fail" and data["guard_median_runs"] == "0"
    data.update({
        "source_fail_on_empty": "on", "guard_min_rows": "100", "guard_max_rows": "", "guard_median_runs": "5",
        "guard_median_percent": "40", "guard_action": "hold",
        "dest-0-done_file": "{name}.ok", "dest-0-done_manifest": "on",
        "failure-send": "on", "failure-recipients": "ops@example.test", "failure-after_failures": "3", "failure-recovered": "on",
    })

    response = client.post(url, data, follow=True)

    html = response.content.decode()
    assert response.redirect_chain and not errors_of(html), errors_of(html)
    task = Task.objects.get(pk=task.pk)
    assert (task.guard_min_rows, task.guard_max_rows, task.guard_median_runs, task.guard_median_percent, task.guard_action) == (
        100, None, 5, 40, GuardAction.HOLD)
    dest = task.destinations.get()
    assert (dest.done_file, dest.done_manifest) == ("{name}.ok", True)
    failure = task.notifications.get(event="failure")
    assert (failure.after_failures, failure.recovered) == (3, True)
    for words in ("No rows; fewer than 100 rows; more than 40 % above or below the median of the last 5 successful runs.",
                  "Hold the delivery.", "then the done file {name}.ok with a manifest (name,size,sha256)",
                  "only after 3 runs in a row failed for good", "a “recovered” mail on the next success"):
        assert words in html, words


def test_a_median_without_its_percentage_is_refused_on_the_page(client, staff_runner, task):
    client.force_login(staff_runner)
    url = reverse("courier:task_edit", args=[task.pk])
    data = form_on(client, url)
    data.update({"guard_median_runs": "5", "guard_median_percent": "", "guard_min_rows": "10", "guard_max_rows": "2"})

    response = client.post(url, data)

    assert response.status_code == 200
    assert set(errors_of(response.content.decode())) >= {
        "Say how many percent the row count may differ from the median.", "The upper row limit must not be below the lower one."}
    assert Task.objects.get(pk=task.pk).guard_median_runs == 0


def test_the_owner_opts_in_to_the_daily_digest_on_the_project_page(client, staff_runner, task):
    client.force_login(staff_runner)
    url = reverse("courier:project_edit", args=[task.project_id])
    data, _ = browser_form(client.get(url).content.decode(), "project_form")
    assert "owner_digest" not in data  # an unticked box is not sent
    data["owner_digest"] = "on"

    response = client.post(url, data, follow=True)

    assert response.redirect_chain and not errors_of(response.content.decode())
    assert Project.objects.get(pk=task.project_id).owner_digest
