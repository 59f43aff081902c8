"""Parameters entered as lines and as rows on the project page; the task's value wins over the project's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from projects.models import Project
from tests import factories
from tests.form_support import typed_in

pytestmark = pytest.mark.django_db


def edit_page(project) -> str:
    return reverse("courier:project_edit", args=[project.pk])


def test_lines_create_and_update_parameters(client, superuser):
    project = factories.project()
    project.parameters.create(key="@day", value="old")
    client.force_login(superuser)
    lines = "@DAY=parse(%Y-%m-%d-1)\nclient:acme=1\nurl=http://x/?a=b\n"
    response = typed_in(client, edit_page(project), "project_form", parameter_lines=lines)
    assert response.redirect_chain, response.content.decode()[:3000]
    values = dict(Project.objects.get(pk=project.pk).parameters.values_list("key", "value"))
    # The first separator wins, whichever of = and : it is; a key matches ignoring case.
    assert values == {"@day": "parse(%Y-%m-%d-1)", "client": "acme=1", "url": "http://x/?a=b"}


def test_a_bad_line_is_reported_with_its_number_and_nothing_changes(client, superuser):
    project = factories.project()
    client.force_login(superuser)
    response = typed_in(client, edit_page(project), "project_form", parameter_lines="a=1\nno separator here\n")
    assert not response.redirect_chain
    assert "line 2" in response.content.decode()
    assert not project.parameters.exists()


def test_task_parameters_override_project_parameters_in_names_and_sql(sqlite_odbc, tmp_path):
    from datetime import datetime, timezone

    from runs.preview import preview
    from runs.runner import execute
    from runs.state import create_run

    project = factories.project()
    project.parameters.create(key="{client}", value="project-client")
    project.parameters.create(key="@limit", value="1")
    project.parameters.create(key="{only_project}", value="kept")
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(project, source, "DECLARE @limit int = 99\nselect 1 as one",
                                output_name="{client}_{only_project}_%Y.csv")
    task.parameters.create(key="{client}", value="task-client")
    task.parameters.create(key="@limit", value="5")
    factories.destination(task, factories.connection("folder", folder=str(tmp_path)))

    at = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    sql = preview(task, at).sql
    assert "DECLARE @limit int = 5" in sql

    task.code_locations.update(text="select 1 as one")
    run = create_run(task, "manual", intended_at=at)
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert (tmp_path / "task-client_kept_2026.csv").exists()


def test_a_typed_sensitive_value_is_not_echoed_when_the_form_has_errors(client, superuser):
    project = factories.project()
    client.force_login(superuser)
    response = typed_in(client, edit_page(project), "project_form", cron="not a cron", **{
        "param-0-key": "@pw", "param-0-entered_value": "Typed-Canary-991", "param-0-sensitive": "on"})
    assert not response.redirect_chain
    page = response.content.decode()
    assert "a cron trigger needs five" in page
    assert "Typed-Canary-991" not in page
