"""Task Details while it is open: Run now while a run is active, and the live state endpoint that keeps
the status, the run history, the files and the buttons up to date without a reload (issue 15.3, 15.4)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, RunFile, RunStatus, Trigger
from runs.state import create_run
from tasks.models import TaskParameter
from tests import factories
from tests.pages_support import database_connection

pytestmark = pytest.mark.django_db

SENSITIVE = "Acct-7731-Secret"


@pytest.fixture
def task(staff_runner):
    project = factories.project("Billing", owner=staff_runner, timezone="UTC")
    made = factories.query_task(project, database_connection(), "select 1", name="invoices")
    param = TaskParameter(task=made, key="{acct}")
    param.set_value(SENSITIVE, sensitive=True)
    param.save()
    return made


def running(task) -> Run:
    run = create_run(task, Trigger.MANUAL)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
    run.refresh_from_db()
    return run


def finish(run: Run, content: bytes = b"id\n1\n", name: str = "invoices.csv") -> RunFile:
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now(), rows=1)
    record = RunFile(run=run, name=name, size=len(content), rows=1, md5=hashlib.md5(content).hexdigest(),
                     sha256=hashlib.sha256(content).hexdigest())
    record.stored.save(name, ContentFile(content), save=True)
    return record


def controls_of(html: str) -> str:
    return html.split('id="controls"')[1].split('id="settings"')[0]


def run_button(html: str) -> str:
    return re.search(r'<button [^>]*value="run"[^>]*>', html).group(0)


def live(client, task, etag: str | None = None):
    headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
    return client.get(reverse("courier:task_live", args=[task.pk]), **headers)


# --------------------------------------------------------------------------
# Run now while a run is active (15.4)
# --------------------------------------------------------------------------


def test_run_now_while_a_run_is_active_says_it_was_skipped_and_why(client, staff_runner, task):
    active = running(task)
    client.force_login(staff_runner)
    response = client.post(reverse("courier:task_action", args=[task.pk, "run"]), follow=True)
    html = response.content.decode()
    skipped = task.runs.exclude(pk=active.pk).get()
    assert skipped.status == RunStatus.SKIPPED
    assert f"Started run {skipped.pk}" not in html
    message = re.search(r'<li class="warning">([^<]+)</li>', html).group(1)
    assert f"previous run still active (run {active.pk} of Billing/invoices, running)" in message
    assert f"skipped run {skipped.pk}" in message
    # The page keeps following the run that is still going.
    assert f'data-url="{reverse("courier:run_log", args=[active.pk])}"' in html
    assert f"Log of run {active.pk}" in html
    state = html.split('class="task-state"')[1].split("</p>")[0]
    assert "status-running" in state and "status-skipped" not in state
    # …and the admin log says what happened, as for every manual action.
    assert f"skipped run {skipped.pk}" in html.split('id="action-history"')[1]


def test_run_now_is_disabled_while_a_run_is_active(client, staff_runner, task):
    client.force_login(staff_runner)
    idle = run_button(client.get(reverse("courier:task_detail", args=[task.pk])).content.decode())
    assert "disabled" not in idle
    active = create_run(task, Trigger.SCHEDULE)  # queued counts as active: a start now would be skipped
    busy = run_button(client.get(reverse("courier:task_detail", args=[task.pk])).content.decode())
    assert "disabled" in busy and f"Run {active.pk} is queued" in busy
    finish(active)
    assert "disabled" not in run_button(client.get(reverse("courier:task_detail", args=[task.pk])).content.decode())


def test_the_skipped_run_does_not_hide_the_outcome_of_the_run_that_went_on(client, staff_runner, task):
    """After the active run ends, the page shows how it ended, not the skip recorded while it ran."""
    active = running(task)
    client.force_login(staff_runner)
    client.post(reverse("courier:task_action", args=[task.pk, "run"]))
    finish(active)
    html = client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()
    assert f"Log of run {active.pk}" in html
    assert "status-succeeded" in html.split('class="task-state"')[1].split("</p>")[0]


# --------------------------------------------------------------------------
# The live state endpoint (15.3)
# --------------------------------------------------------------------------


def test_the_live_state_follows_a_run_from_start_to_its_file(client, staff_runner, task):
    client.force_login(staff_runner)
    before = live(client, task)
    assert before.status_code == 200 and before["ETag"]
    assert live(client, task, before["ETag"]).status_code == 304  # nothing changed: nothing sent

    run = running(task)
    during = live(client, task, before["ETag"])
    assert during.status_code == 200
    data = during.json()
    assert data["current"] == {"id": run.pk, "status": "running", "status_label": "Running", "finished": False,
                               "log_url": reverse("courier:run_log", args=[run.pk])}
    assert "status-running" in data["runs"] and "No files yet." in data["files"]
    assert "disabled" in run_button(data["controls"])

    record = finish(run)
    after = live(client, task, during["ETag"])
    data = after.json()
    assert data["current"]["status"] == "succeeded" and data["current"]["finished"] is True
    assert "status-succeeded" in data["runs"] and "status-running" not in data["runs"]
    assert "invoices.csv" in data["files"] and reverse("courier:runfile_download", args=[record.pk]) in data["files"]
    assert "disabled" not in run_button(data["controls"])
    assert live(client, task, after["ETag"]).status_code == 304


def test_the_live_state_masks_file_names_like_the_page(client, staff_runner, task):
    run = running(task)
    finish(run, name=f"invoices_{SENSITIVE}.csv")
    client.force_login(staff_runner)
    body = live(client, task).content.decode()
    assert SENSITIVE not in body and "invoices_********.csv" in json.loads(body)["files"]


def test_the_live_state_keeps_the_pages_history_page(client, staff_runner, task):
    for _ in range(20):
        finish(create_run(task, Trigger.SCHEDULE))
    client.force_login(staff_runner)
    first = live(client, task).json()["runs"]
    second = client.get(reverse("courier:task_live", args=[task.pk]), {"runs-page": 2}).json()["runs"]
    newest = task.runs.order_by("-id").first().pk
    assert f'href="/admin/runs/run/{newest}/change/"' in first and f'href="/admin/runs/run/{newest}/change/"' not in second
    assert 'href="?runs-page=1"' in second  # links stay relative to Task Details


def test_the_live_state_is_cheap_when_nothing_changed(client, staff_runner, task):
    for _ in range(30):
        finish(create_run(task, Trigger.SCHEDULE))
    client.force_login(staff_runner)
    etag = live(client, task)["ETag"]
    with CaptureQueriesContext(connection) as unchanged:
        assert live(client, task, etag).status_code == 304
    with CaptureQueriesContext(connection) as changed:
        assert live(client, task).status_code == 200
    assert len(unchanged) <= 7, "\n".join(q["sql"][:150] for q in unchanged)
    assert len(changed) <= 25, "\n".join(q["sql"][:150] for q in changed)


def test_the_live_state_needs_the_right_to_view_tasks(client, django_user_model, task):
    nobody = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(nobody)
    response = live(client, task)
    assert response.status_code == 403


def test_run_all_and_run_all_errored_say_which_starts_were_skipped(client, staff_runner, task):
    """The same honesty on the project's Run all and the dashboard's Run all errored."""
    other = factories.query_task(task.project, database_connection(), "select 2", name="payments")
    active = running(task)
    client.force_login(staff_runner)
    html = client.post(reverse("courier:project_action", args=[task.project_id, "run-all"]), follow=True).content.decode()
    skipped = task.runs.get(status=RunStatus.SKIPPED)
    assert "(1 run(s) queued)" in html
    assert (f"Skipped: invoices, previous run still active (run {active.pk} of Billing/invoices, running); "
            f"recorded as skipped run {skipped.pk}.") in html

    # Both errored (their latest run failed); payments has an older run still going.
    Run.objects.filter(task=other).update(status=RunStatus.RUNNING, started_at=timezone.now())
    busy = other.runs.get()
    Run.objects.filter(pk=active.pk).update(status=RunStatus.FAILED, finished_at=timezone.now())
    Run.objects.filter(pk=skipped.pk).delete()
    for errored in (task, other):
        create_run(errored, Trigger.SCHEDULE, status=RunStatus.FAILED, finished_at=timezone.now())
    html = client.post(reverse("courier:run_errored"), follow=True).content.decode()
    assert "Started 1 errored task(s)." in html
    skipped = other.runs.get(status=RunStatus.SKIPPED)
    assert (f"Skipped: payments, previous run still active (run {busy.pk} of Billing/payments, running); "
            f"recorded as skipped run {skipped.pk}.") in html
