"""The admin shows every model, and a run's page shows its log, files and deliveries."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib import admin
from django.urls import reverse

from etlsite.pages import LeadsToCourierPages
from runs.models import RunLog, Stage
from runs.runner import execute
from runs.state import create_run
from tests import factories

pytestmark = pytest.mark.django_db


def test_every_admin_list_and_add_page_renders_for_a_superuser(client, superuser):
    """Each renders, or leads to the Courier page that stands for it (tasks/test_one_ui.py)."""
    client.force_login(superuser)
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        pages = [base, base + "add/"] if model_admin.has_add_permission(_request(superuser)) else [base]
        for url in pages:
            response = client.get(url, follow=True)
            assert response.status_code == 200, url
            led_on = isinstance(model_admin, LeadsToCourierPages)
            assert bool(response.redirect_chain) == led_on, url
            assert not led_on or response.redirect_chain[-1][0].startswith("/admin/courier/"), url


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


def test_connection_add_page_shows_the_fields_of_the_chosen_kind(client, superuser):
    client.force_login(superuser)
    page = client.get("/admin/connections/connection/add/?kind=sftp").content.decode()
    assert 'name="host_key"' in page and 'name="password"' in page
    assert 'name="odbc"' not in page


def test_run_page_shows_log_file_and_delivery(client, superuser, sqlite_odbc, tmp_path):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 42 as answer", output_name="answer.csv")
    factories.destination(task, factories.connection("folder", folder=str(tmp_path)))
    run = create_run(task, "manual")
    execute(run.pk)
    record = run.files.get()
    client.force_login(superuser)
    page = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert "Succeeded" in page
    assert "The query returned 1 row." in page
    assert "answer.csv" in page and record.md5 in page and record.sha256 in page
    assert "Uploaded answer.csv" in page


def test_staff_with_view_rights_see_runs_but_cannot_run_tasks(client, staff_viewer, sqlite_odbc):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 1 as one")
    create_run(task, "manual")
    client.force_login(staff_viewer)
    assert client.get("/admin/runs/run/").status_code == 200
    response = client.post(reverse("courier:task_action", args=[task.pk, "run"]))
    assert response.status_code == 403
    assert task.runs.count() == 1


def test_staff_with_run_permission_can_run_from_task_details(client, staff_runner, sqlite_odbc, django_capture_on_commit_callbacks):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 1 as one")
    client.force_login(staff_runner)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("courier:task_action", args=[task.pk, "run"]))
    assert response.status_code == 302
    run = task.runs.get()
    assert run.status == "queued" and run.started_by == staff_runner


def long_log(run, lines: int) -> None:
    RunLog.objects.bulk_create(RunLog(run=run, stage=Stage.PROCESSING, message=f"script line {n:05d}") for n in range(1, lines + 1))


def test_a_run_page_shows_the_last_lines_of_a_long_log_and_links_to_task_details_for_the_rest(client, superuser, sqlite_odbc):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 1 as one")
    run = create_run(task, "manual")
    long_log(run, 250)
    newer = create_run(task, "manual")  # so the linked log is not simply the latest run's
    client.force_login(superuser)

    page = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    shown = sorted(set(re.findall(r"script line (\d{5})", page)))
    assert shown == [f"{n:05d}" for n in range(51, 251)], (shown[:3], len(shown))
    assert page.index("script line 00051") < page.index("script line 00250")  # oldest first, as a log reads
    whole_log = reverse("courier:task_detail", args=[task.pk]) + f"?run={run.pk}#live-log-module"
    assert "The last 200 of 250 log lines are shown below." in page
    assert f'<a href="{html.escape(whole_log)}">the whole log on Task Details</a>' in page

    details = client.get(whole_log).content.decode()
    assert f"Log of run {run.pk}" in details
    assert f'data-url="{reverse("courier:run_log", args=[run.pk])}"' in details
    assert f"Log of run {newer.pk}" in client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()


def test_a_short_log_is_shown_whole_on_the_run_page(client, superuser, sqlite_odbc):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    run = create_run(factories.query_task(factories.project(), source, "select 1 as one"), "manual")
    long_log(run, 3)
    client.force_login(superuser)
    page = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert sorted(set(re.findall(r"script line (\d{5})", page))) == ["00001", "00002", "00003"]
    assert "All 3 log lines are shown below" in page


@pytest.mark.parametrize("value", ["999999", "other", "x"])
def test_task_details_refuses_a_run_that_is_not_one_of_the_task(client, superuser, sqlite_odbc, value):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    project = factories.project()
    task = factories.query_task(project, source, "select 1 as one", name="mine")
    other = create_run(factories.query_task(project, source, "select 2 as two", name="theirs"), "manual")
    client.force_login(superuser)
    value = str(other.pk) if value == "other" else value
    response = client.get(reverse("courier:task_detail", args=[task.pk]), {"run": value})
    assert response.status_code == 404
