"""Projects and tasks made the way a person makes them: open the page, type, save, land on what was saved.

No factory makes what the form makes: each test GETs the New page, changes
only what a person would type or pick (tests/form_support.py reads the rest
from the page as a browser sends it), POSTs, follows the redirect and checks
the page it lands on and the saved object. The connections a task picks are
made beforehand, as a superuser would have made them.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.models import Schedule

from projects.models import Project
from projects.scheduling import schedule_name
from runs.models import RunStatus
from runs.runner import execute
from tasks.models import CodeRole, Task
from tests import factories
from tests.form_support import typed_in
from tests.pages_support import connections_to_pick

pytestmark = pytest.mark.django_db


@pytest.fixture
def conns(tmp_path):
    return connections_to_pick(tmp_path)


def landed_on(response, url: str) -> str:
    assert response.redirect_chain, "not saved: the form came back"
    assert response.redirect_chain[-1][0] == url and response.status_code == 200
    return response.content.decode()


# --------------------------------------------------------------------------
# Projects, one per kind of trigger
# --------------------------------------------------------------------------

TRIGGERS = {
    "cron": ({"cron": "0 6 * * 1-5"}, lambda p: p.cron == "0 6 * * 1-5"),
    "interval": ({"interval_every": "15", "interval_unit": "minutes"}, lambda p: (p.interval_every, p.interval_unit) == (15, "minutes")),
    "once": ({"once_at": "2031-03-04T06:30"}, lambda p: p.once_at is not None and p.once_at.year == 2031),
}


@pytest.mark.parametrize("kind", TRIGGERS)
def test_a_project_is_made_through_its_page_with_each_kind_of_trigger(client, staff_runner, kind):
    typed, saved = TRIGGERS[kind]
    client.force_login(staff_runner)

    response = typed_in(client, reverse("courier:project_new"), "project_form", name=f"Nightly {kind}",
                        description="Orders for Acme", **typed)

    project = Project.objects.get(name=f"Nightly {kind}")
    page = landed_on(response, reverse("courier:project_detail", args=[project.pk]))
    assert f"Added the project “Nightly {kind}”." in page
    assert project.owner == staff_runner and saved(project)
    assert Schedule.objects.filter(name=schedule_name(project.pk, kind)).exists()


def test_parameters_pasted_as_lines_on_the_project_page_are_saved(client, staff_runner):
    """SPEC §6: parameters are written one per line, key=value or key:value, or entered as rows."""
    client.force_login(staff_runner)
    lines = "@day=parse(%Y-%m-%d-1)\nclient:acme=1\n"

    response = typed_in(client, reverse("courier:project_new"), "project_form", name="Lines", parameter_lines=lines)

    project = Project.objects.get(name="Lines")
    landed_on(response, reverse("courier:project_detail", args=[project.pk]))
    assert dict(project.parameters.values_list("key", "value")) == {"@day": "parse(%Y-%m-%d-1)", "client": "acme=1"}


def test_a_bad_parameter_line_is_named_by_its_number_and_nothing_is_saved(client, staff_runner):
    client.force_login(staff_runner)
    response = typed_in(client, reverse("courier:project_new"), "project_form", name="Lines", parameter_lines="a=1\nno separator\n")
    assert not response.redirect_chain and "line 2: expected key=value or key:value" in response.content.decode()
    assert not Project.objects.exists()


# --------------------------------------------------------------------------
# Tasks, one per kind of source and one per kind of destination
# --------------------------------------------------------------------------

SOURCES = {
    "database": {"query-text": "select 42 as answer"},
    "sftp": {"source_path": "exports/orders_%Y%m%d*.csv"},
    "ftp": {"source_path": "orders.csv", "source_missing_ok": "on"},
    "smb": {"source_path": "exports/orders.csv", "source_delimiter": ";"},
    "ssh": {"query-text": "cat /srv/export.csv", "source_stdout_as_file": "on"},
    "python": {"script-text": "print('made by a script')"},
}


def new_task_page(project: Project) -> str:
    return reverse("courier:task_new", args=[project.pk])


@pytest.mark.parametrize("kind", SOURCES)
def test_a_task_is_made_through_its_page_with_each_kind_of_source(client, staff_coder, conns, kind):
    project = factories.project("Nightly", owner=staff_coder)
    client.force_login(staff_coder)
    connection = "" if kind == "python" else conns[kind].pk

    response = typed_in(client, new_task_page(project), "task_form", name=f"from {kind}", source_kind=kind,
                        source_connection=connection, output_name="orders_%Y%m%d", **SOURCES[kind])

    task = Task.objects.get(name=f"from {kind}")
    page = landed_on(response, reverse("courier:task_detail", args=[task.pk]))
    assert f"Added the task “from {kind}”." in page
    assert (task.project, task.source_kind, task.output_name) == (project, kind, "orders_%Y%m%d")
    assert task.source_connection == (None if kind == "python" else conns[kind])
    codes = {code.role: code.text for code in task.code_locations.all()}
    if kind in ("database", "ssh"):
        assert codes == {CodeRole.SOURCE: SOURCES[kind]["query-text"]}
    elif kind == "python":
        assert codes == {CodeRole.PROCESSING: SOURCES[kind]["script-text"]}
    else:
        assert codes == {} and task.source_path == SOURCES[kind]["source_path"]


DESTINATIONS = {"sftp": "daily", "ftp": "/incoming", "smb": "exports\\daily", "folder": "daily"}


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_a_task_is_made_through_its_page_with_each_kind_of_destination(client, staff_runner, conns, kind):
    project = factories.project("Nightly", owner=staff_runner)
    client.force_login(staff_runner)

    response = typed_in(client, new_task_page(project), "task_form", name=f"to {kind}", source_connection=conns["database"].pk,
                        **{"query-text": "select 42 as answer", "dest-0-kind": kind, "dest-0-connection": conns[kind].pk,
                           "dest-0-folder": DESTINATIONS[kind], "dest-0-if_exists": "overwrite"})

    task = Task.objects.get(name=f"to {kind}")
    landed_on(response, reverse("courier:task_detail", args=[task.pk]))
    destination = task.destinations.get()
    assert (destination.kind, destination.connection, destination.folder, destination.if_exists) == (
        kind, conns[kind], DESTINATIONS[kind], "overwrite")


def test_a_task_made_through_its_page_runs_and_delivers(client, staff_runner, conns, tmp_path):
    project = factories.project("Nightly", owner=staff_runner)
    client.force_login(staff_runner)
    typed_in(client, new_task_page(project), "task_form", name="answer", source_connection=conns["database"].pk,
             output_name="answer", parameter_lines="@unused=1",
             **{"query-text": "select 42 as answer", "dest-0-kind": "folder", "dest-0-connection": conns["folder"].pk})
    task = Task.objects.get(name="answer")
    assert dict(task.parameters.values_list("key", "value")) == {"@unused": "1"}

    response = client.post(reverse("courier:task_action", args=[task.pk, "run"]), follow=True)
    assert "Started run" in response.content.decode()
    run = task.runs.get()
    execute(run.pk)
    run.refresh_from_db()

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (tmp_path / "outbox" / "answer.csv").read_text().splitlines() == ["answer", "42"]
