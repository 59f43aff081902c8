""":name placeholders where people meet them (issue 17): refused on save without their parameter
(task page, import_config), and previewed with their values and the unused parameters
(Task Details, preview_task, the task form).
"""

from __future__ import annotations

import copy
import html
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from projects.models import Project
from tasks.configuration.importer import import_config
from tasks.configuration.reader import ConfigError
from tasks.models import CodeRole, Task, TaskParameter
from tests import factories
from tests.form_support import typed_in
from tests.pages_support import database_connection, sftp_connection
from tests.test_config_io import spec_example
from tests.test_pages_task_form import errors_of, form_data, new_task

pytestmark = pytest.mark.django_db

QUERY = "SELECT id, amount FROM sales\nWHERE day >= cast(:start as date) AND country = :country"
MISSING = "No parameter for the placeholder :country (line 2): add a parameter with the key country (a leading @, # or $ is allowed)."


@pytest.fixture
def project(staff_runner):
    project = factories.project("Nightly", owner=staff_runner)
    project.parameters.create(key="@start", value="parse(%Y-%m-firstday0)")
    return project


@pytest.fixture
def conns():
    return {"db": database_connection(), "sftp": sftp_connection()}


def text_of(page) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.content.decode()))


# --- the task page ------------------------------------------------------------------


def test_the_task_form_refuses_a_placeholder_without_a_parameter_and_saves_it_with_one(client, staff_coder, project, conns):
    client.force_login(staff_coder)
    assert client.get(reverse("courier:task_new", args=[project.pk])).status_code == 200
    data = form_data(conns, **{"query-text": QUERY})
    response = new_task(client, project, data)
    assert MISSING in [html.unescape(e) for e in errors_of(response)]
    assert html.unescape(response.content.decode()).count(MISSING) == 1
    assert not Task.objects.exists()
    # The project gives :start; a task row gives :country.
    response = new_task(client, project, {**data, "param-1-key": "country", "param-1-entered_value": "NL", "param-1-sensitive": ""})
    assert response.status_code == 302, errors_of(response)
    task = Task.objects.get()
    assert task.code_locations.get(role=CodeRole.SOURCE).text == QUERY
    assert response["Location"] == reverse("courier:task_detail", args=[task.pk])


def test_removing_the_parameter_a_placeholder_uses_is_refused(client, staff_coder, project, conns):
    task = factories.query_task(project, conns["db"], QUERY)
    country = TaskParameter.objects.create(task=task, key="country", value="NL")
    client.force_login(staff_coder)
    data = form_data(conns, **{"query-text": QUERY, "param-TOTAL_FORMS": "1", "param-INITIAL_FORMS": "1",
                               "param-0-id": country.pk, "param-0-key": "country", "param-0-entered_value": "NL",
                               "param-0-DELETE": "on"})
    response = client.post(reverse("courier:task_edit", args=[task.pk]), {**data, "project": project.pk})
    assert MISSING in [html.unescape(e) for e in errors_of(response)]
    assert task.parameters.filter(key="country").exists()


def test_the_task_form_warns_of_parameters_the_query_does_not_use(client, staff_coder, project, conns):
    task = factories.query_task(project, conns["db"], "SELECT * FROM sales WHERE country = '{country}'")
    TaskParameter.objects.create(task=task, key="{country}", value="NL")
    client.force_login(staff_coder)
    page = client.get(reverse("courier:task_edit", args=[task.pk]))
    warning = re.search(r'<p class="warning-note sql-unused">(.*?)</p>', page.content.decode(), re.S)
    assert warning, "no unused-parameter warning on the form"
    assert re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", warning.group(1)))).startswith(
        "Parameters the SQL does not use: @start, {country}. A parameter reaches SQL only as a :name placeholder")
    # A warning, not an error: the task saves as it is.
    data = form_data(conns, **{"query-text": task.code_locations.get().text, "param-TOTAL_FORMS": "0"})
    response = client.post(reverse("courier:task_edit", args=[task.pk]), {**data, "project": project.pk})
    assert response.status_code == 302, errors_of(response)


# --- the preview ----------------------------------------------------------------------


@pytest.fixture
def bound_task(project, conns):
    task = factories.query_task(project, conns["db"], QUERY + "\nGO\nSELECT :token AS t, :country AS c", name="bound")
    TaskParameter.objects.create(task=task, key="country", value="O'Brien", position=0)
    TaskParameter.objects.create(task=task, key="{client}", value="acme", position=1)
    token = TaskParameter(task=task, key="#token", position=2)
    token.set_value("s3cr3t-token", sensitive=True)
    token.save()
    return task


def test_task_details_shows_the_prepared_sql_each_bound_value_and_the_unused_parameters(client, staff_runner, bound_task):
    client.force_login(staff_runner)
    page = client.get(reverse("courier:task_detail", args=[bound_task.pk]))
    content = page.content.decode()
    assert "s3cr3t-token" not in content
    sql = html.unescape(re.search(r'id="sql-preview">(.*?)</pre>', content, re.S).group(1))
    assert sql == "SELECT id, amount FROM sales\nWHERE day >= cast(? as date) AND country = ?\nGO\nSELECT ? AS t, ? AS c"
    table = re.search(r'<table class="sql-bindings" id="sql-bindings">(.*?)</table>', content, re.S).group(1)
    rows = [[html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])]
    assert rows[1:] == [["1", "2", ":country", '"O\'Brien"'], ["2", "1", ":token", "********"], ["2", "2", ":country", '"O\'Brien"']]
    assert rows[0][:3] == ["1", "1", ":start"] and re.fullmatch(r'"\d{4}-\d{2}-01"', rows[0][3])  # parse(...) resolved
    assert "Parameters the SQL does not use: {client}." in re.sub(r"\s+", " ", text_of(page))


def test_preview_task_prints_the_sql_then_the_bound_values_as_comments(bound_task, capsys):
    call_command("preview_task", "Nightly/bound", "--sql", "--at", "2024-03-15T06:00")
    assert capsys.readouterr().out == (
        "SELECT id, amount FROM sales\nWHERE day >= cast(? as date) AND country = ?\nGO\nSELECT ? AS t, ? AS c\n"
        "-- Bound to the ? markers, as text:\n"
        '--   batch 1, ? 1: :start = "2024-03-01"\n'
        '--   batch 1, ? 2: :country = "O\'Brien"\n'
        "--   batch 2, ? 1: :token = ********\n"
        '--   batch 2, ? 2: :country = "O\'Brien"\n'
        "-- Parameters the SQL does not use: {client}\n"
    )


def test_preview_task_fails_naming_a_placeholder_without_a_parameter(project, conns, capsys):
    factories.query_task(project, conns["db"], QUERY, name="unbound")
    with pytest.raises(CommandError) as error:
        call_command("preview_task", "Nightly/unbound", "--sql")
    assert str(error.value) == f"The SQL cannot be prepared: {MISSING}" and error.value.returncode == 1
    assert capsys.readouterr().out == ""


# --- parameters pasted as lines ------------------------------------------------------------


def test_a_parameter_pasted_as_a_line_fills_a_placeholder(client, staff_coder, project, conns):
    task = factories.query_task(project, conns["db"], "select 1")
    client.force_login(staff_coder)
    url = reverse("courier:task_edit", args=[task.pk])
    response = typed_in(client, url, "task_form", **{"query-text": QUERY})
    assert not response.redirect_chain and MISSING in html.unescape(response.content.decode())
    assert task.code_locations.get().text == "select 1"
    # Pasted as a line, the parameter is there: saved.
    response = typed_in(client, url, "task_form", parameter_lines="country=NL", **{"query-text": QUERY})
    assert response.redirect_chain
    assert task.code_locations.get().text == QUERY and task.parameters.get().key == "country"


# --- import_config ----------------------------------------------------------------------


@pytest.fixture
def example(gpg_home, django_user_model):
    django_user_model.objects.create_user("alice")
    document = spec_example(gpg_home.public_key_armored)
    document["projects"][0]["tasks"][0]["source"]["code"]["text"] = "select 1 as one\nwhere :day >= '2024' and :region = 'EU'"
    return document


def test_import_config_refuses_a_placeholder_without_a_parameter_with_its_json_path(example):
    with pytest.raises(ConfigError) as caught:
        import_config(copy.deepcopy(example))
    assert caught.value.errors == [
        "projects[0].tasks[0].source.code.text: No parameter for the placeholder :region (line 2): "
        "add a parameter with the key region (a leading @, # or $ is allowed)."
    ]  # :day is the project's @day
    assert not Project.objects.exists()
    example["projects"][0]["tasks"][0]["parameters"].append({"key": "region", "value": "EU", "sensitive": False})
    import_config(example)
    assert Task.objects.get(name="orders").parameters.filter(key="region").exists()


def test_the_import_command_exits_2_and_names_the_path(example, tmp_path, capsys):
    path = tmp_path / "courier.json"
    path.write_text(json.dumps(example))
    with pytest.raises(CommandError) as caught:
        call_command("import_config", str(path))
    assert caught.value.returncode == 2
    assert "projects[0].tasks[0].source.code.text: No parameter for the placeholder :region (line 2)" in capsys.readouterr().err
    assert not Project.objects.exists()
