"""Parameters entered as lines and as rows in the admin; the task's value wins over the project's."""

from __future__ import annotations

import pytest

from projects.models import Project
from tests import factories

pytestmark = pytest.mark.django_db


def project_form(project, lines: str) -> dict:
    return {
        "name": project.name, "description": "", "owner": project.owner_id, "timezone": "UTC", "cron": "",
        "interval_every": "", "interval_unit": "", "once_at_0": "", "once_at_1": "", "start_at_0": "", "start_at_1": "",
        "end_at_0": "", "end_at_1": "", "missed_policy": "none", "catch_up_minutes": "360", "parameter_lines": lines,
        "parameters-TOTAL_FORMS": "0", "parameters-INITIAL_FORMS": "0",
        "tasks-TOTAL_FORMS": "0", "tasks-INITIAL_FORMS": "0",
    }


def test_lines_create_and_update_parameters(client, superuser):
    project = factories.project()
    project.parameters.create(key="@day", value="old")
    client.force_login(superuser)
    lines = "@DAY=parse(%Y-%m-%d-1)\nclient:acme=1\nurl=http://x/?a=b\n"
    response = client.post(f"/admin/projects/project/{project.pk}/change/", project_form(project, lines))
    assert response.status_code == 302, response.content.decode()[:3000]
    values = dict(Project.objects.get(pk=project.pk).parameters.values_list("key", "value"))
    # The first separator wins, whichever of = and : it is; a key matches ignoring case.
    assert values == {"@day": "parse(%Y-%m-%d-1)", "client": "acme=1", "url": "http://x/?a=b"}


def test_a_bad_line_is_reported_with_its_number_and_nothing_changes(client, superuser):
    project = factories.project()
    client.force_login(superuser)
    response = client.post(f"/admin/projects/project/{project.pk}/change/", project_form(project, "a=1\nno separator here\n"))
    assert response.status_code == 200
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
    form = project_form(project, "")
    form.update({"cron": "not a cron", "parameters-TOTAL_FORMS": "1", "parameters-0-key": "@pw",
                 "parameters-0-entered_value": "Typed-Canary-991", "parameters-0-sensitive": "on", "parameters-0-position": "0"})
    response = client.post(f"/admin/projects/project/{project.pk}/change/", form)
    assert response.status_code == 200
    page = response.content.decode()
    assert "a cron trigger needs five" in page
    assert "Typed-Canary-991" not in page
