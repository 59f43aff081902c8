"""What can only fail when a task runs is refused when it is saved (SPEC §12), on every way in, on the right field.

Each doomed value is typed into the New Task page (the error must sit on the
field that holds it), sent to the admin's task pages (which save nothing: they
lead to Courier's) and imported with import_config (the error names its JSON
path). A cron expression that cannot be used names the cron field at fault.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass

import pytest
from django.urls import reverse

from projects.models import Project
from tasks.configuration.importer import import_config
from tasks.configuration.reader import ConfigError
from tasks.models import Task
from tests import factories
from tests.form_support import typed_in
from tests.pages_support import connections_to_pick

pytestmark = pytest.mark.django_db


@pytest.fixture
def conns(tmp_path):
    return connections_to_pick(tmp_path)


@dataclass(frozen=True)
class Doomed:
    typed: dict  # what a person types on the New Task page
    json: dict  # the same in import_config's task, as {"section.key": value}
    field: str  # the page's field that must carry the error
    path: str  # the JSON path below the task that must carry it
    message: str  # a part of the message

    def __str__(self) -> str:
        return f"{self.field}={next(iter(self.typed.values()))}"


DOOMED = [
    Doomed({"output_name": "../../../tmp/evil_%Y%m%d.csv"}, {"output.name": "../../../tmp/evil_%Y%m%d.csv"},
           "output_name", "output.name", "“../../../tmp/evil_%Y%m%d.csv” contains a path separator"),
    Doomed({"output_name": "/tmp/evil.csv"}, {"output.name": "/tmp/evil.csv"},
           "output_name", "output.name", "contains a path separator"),
    Doomed({"zip_enabled": "on", "zip_name": "../bundle_%Y"}, {"output.zip": {"name": "../bundle_%Y"}},
           "zip_name", "output.zip.name", "The zip name “../bundle_%Y” contains a path separator"),
    Doomed({"dest-0-folder": "../../outside"}, {"destinations.folder": "../../outside"},
           "dest-0-folder", "destinations[0].folder", "The path “../../outside” may not contain “..”."),
    Doomed({"dest-0-folder": "/etc"}, {"destinations.folder": "/etc"},
           "dest-0-folder", "destinations[0].folder", "The path “/etc” lies outside the base folder"),
    Doomed({"output_name": "report_50%.csv"}, {"output.name": "report_50%.csv"},
           "output_name", "output.name", "“%.” in “report_50%.csv” is no date pattern; write %% for a percent sign"),
    Doomed({"output_name": "orders_%Y%m%"}, {"output.name": "orders_%Y%m%"},
           "output_name", "output.name", "“%” in “orders_%Y%m%” is no date pattern"),
    Doomed({"zip_enabled": "on", "zip_name": "bundle_%Q"}, {"output.zip": {"name": "bundle_%Q"}},
           "zip_name", "output.zip.name", "“%Q” in “bundle_%Q” is no date pattern"),
    Doomed({"source_kind": "sftp", "source_connection": "sftp", "source_path": "orders_%.csv"},
           {"source": {"kind": "sftp", "connection": "Acme/drop", "path": "orders_%.csv"}},
           "source_path", "source.path", "“%.” in “orders_%.csv” is no date pattern"),
    Doomed({"source_kind": "sftp", "source_connection": "sftp", "source_path": "/etc/passwd"},
           {"source": {"kind": "sftp", "connection": "Acme/drop", "path": "/etc/passwd"}},
           "source_path", "source.path", "The path “/etc/passwd” lies outside the base folder “/in”."),
    Doomed({"output_type": "keep"}, {"output.type": "keep"},
           "output_type", "output.type", "“Keep as is” passes source files on unchanged"),
]


# --------------------------------------------------------------------------
# The task page
# --------------------------------------------------------------------------


def page_values(conns, doomed: Doomed) -> dict:
    typed = {"name": "orders", "source_connection": conns["database"].pk, "query-text": "select 1 as one",
             "dest-0-kind": "folder", "dest-0-connection": conns["folder"].pk, "dest-0-folder": "daily", **doomed.typed}
    return {key: conns[value].pk if key.endswith("connection") and value in conns else value for key, value in typed.items()}


def field_errors(editor) -> dict[str, list[str]]:
    """Every error of the task page by the name of the field it is shown on (prefixed, as in the HTML)."""
    forms = [editor.form, editor.query, editor.script, *editor.parameters.forms, *editor.destinations.forms, *editor.emails.values()]
    return {form.add_prefix(name): list(errors) for form in forms for name, errors in form.errors.items()}


@pytest.mark.parametrize("doomed", DOOMED, ids=str)
def test_the_task_page_refuses_each_doomed_value_on_its_field(client, staff_runner, conns, doomed):
    project = factories.project("Nightly", owner=staff_runner)
    client.force_login(staff_runner)

    response = typed_in(client, reverse("courier:task_new", args=[project.pk]), "task_form", **page_values(conns, doomed))

    assert not response.redirect_chain, "saved a task that can only fail when it runs"
    errors = field_errors(response.context["editor"])
    assert list(errors) == [doomed.field], errors
    assert any(doomed.message in message for message in errors[doomed.field]), errors
    assert doomed.message in html.unescape(response.content.decode())
    assert not Task.objects.exists()


def test_the_edit_page_refuses_a_doomed_value_and_keeps_the_saved_task(client, staff_runner, conns):
    project = factories.project("Nightly", owner=staff_runner)
    client.force_login(staff_runner)
    typed_in(client, reverse("courier:task_new", args=[project.pk]), "task_form", **page_values(conns, Doomed({}, {}, "", "", "")))
    task = Task.objects.get()

    response = typed_in(client, reverse("courier:task_edit", args=[task.pk]), "task_form", output_type="keep",
                        output_name="../evil")

    assert set(field_errors(response.context["editor"])) == {"output_type", "output_name"}
    task.refresh_from_db()
    assert (task.output_type, task.output_name) == ("", "")  # blank: CSV for a query


@pytest.mark.parametrize("typed", [
    {"output_name": "orders_%client%_%Y%m%d-1.csv", "param-0-key": "%client%", "param-0-entered_value": "acme"},
    {"output_name": "50%%_of_{region}.csv"},
    {"output_type": "keep", "source_kind": "sftp", "source_connection": "sftp", "source_path": "out/*.pdf"},
    {"dest-0-folder": "/in/daily", "dest-0-kind": "sftp", "dest-0-connection": "sftp"},
], ids=["a %-delimited parameter key", "%% for a percent sign", "keep a source file", "an absolute folder inside the base"])
def test_what_can_run_is_saved(client, staff_runner, conns, typed):
    project = factories.project("Nightly", owner=staff_runner)
    client.force_login(staff_runner)
    response = typed_in(client, reverse("courier:task_new", args=[project.pk]), "task_form", **page_values(conns, Doomed(typed, {}, "", "", "")))
    assert response.redirect_chain, field_errors(response.context["editor"])


# --------------------------------------------------------------------------
# The admin: its task pages save nothing, they lead to Courier's
# --------------------------------------------------------------------------


@pytest.mark.parametrize("doomed", DOOMED[:3], ids=str)
def test_the_admin_saves_no_doomed_value(client, superuser, conns, doomed):
    project = factories.project("Nightly", owner=superuser)
    task = factories.query_task(project, conns["database"], "select 1 as one")
    client.force_login(superuser)
    posted = {**page_values(conns, doomed), "project": project.pk, "_save": "Save"}

    added = client.post(reverse("admin:tasks_task_add"), {**posted, "name": "other"})
    changed = client.post(reverse("admin:tasks_task_change", args=[task.pk]), posted)

    assert added.status_code == changed.status_code == 302
    assert changed["Location"] == reverse("courier:task_detail", args=[task.pk])
    assert list(Task.objects.values_list("name", "output_name", "output_type", "zip_name")) == [("orders", "", "csv", "")]


# --------------------------------------------------------------------------
# import_config
# --------------------------------------------------------------------------


def document(task_changes: dict, cron: str = "0 6 * * *") -> dict:
    task = {"name": "orders", "source": {"kind": "database", "connection": "Acme/warehouse",
                                         "code": {"location": "inline", "text": "select 1 as one"}},
            "output": {"type": "csv", "name": "orders_%Y%m%d"},
            "destinations": [{"kind": "folder", "connection": "Acme/outbox", "folder": "daily"}]}
    for key, value in task_changes.items():
        section, _, name = key.partition(".")
        if name == "folder":
            task["destinations"][0]["folder"] = value
        elif name:
            task[section][name] = value
        else:
            task[section] = value
    return {"version": 1, "organizations": [], "gpg_keys": [],
            "projects": [{"name": "Nightly", "owner": "alice", "triggers": {"cron": cron}, "tasks": [task]}]}


def import_errors(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        import_config(copy.deepcopy(data))
    assert not Project.objects.exists() and not Task.objects.exists(), "an import with errors changed something"
    return caught.value.errors


@pytest.mark.parametrize("doomed", DOOMED, ids=str)
def test_import_config_refuses_each_doomed_value_at_its_json_path(conns, django_user_model, doomed):
    django_user_model.objects.create_user("alice")
    errors = import_errors(document(doomed.json))
    wanted = f"projects[0].tasks[0].{doomed.path}: "
    assert [e for e in errors if e.startswith(wanted) and doomed.message in e], errors
    assert len(errors) == 1, errors


def test_import_config_saves_the_same_task_without_the_doomed_value(conns, django_user_model):
    django_user_model.objects.create_user("alice")
    import_config(document({}))
    assert Task.objects.get().destinations.get().folder == "daily"


# --------------------------------------------------------------------------
# A cron expression that cannot be used names its field
# --------------------------------------------------------------------------

CRONS = [
    ("61 6 * * *", "the minute field “61” is not valid"),
    ("0 25 * * *", "the hour field “25” is not valid"),
    ("0 6 32 * *", "the day-of-month field “32” is not valid"),
    ("0 6 * 13 *", "the month field “13” is not valid"),
    ("0 6 * * mon-xyz", "the day-of-week field “mon-xyz” is not valid"),
]


@pytest.mark.parametrize(("cron", "message"), CRONS)
def test_a_bad_cron_names_the_cron_field_on_the_project_page(client, staff_runner, cron, message):
    client.force_login(staff_runner)
    response = typed_in(client, reverse("courier:project_new"), "project_form", name="Nightly", cron=cron)
    assert not response.redirect_chain
    errors = response.context["editor"].form.errors
    assert list(errors) == ["cron"] and message in errors["cron"][0], errors
    assert message in html.unescape(response.content.decode())
    assert not Project.objects.exists()


@pytest.mark.parametrize(("cron", "message"), CRONS)
def test_a_bad_cron_names_the_cron_field_in_import_config(conns, django_user_model, cron, message):
    django_user_model.objects.create_user("alice")
    errors = import_errors(document({}, cron=cron))
    assert len(errors) == 1 and errors[0].startswith("projects[0].triggers.cron: ") and message in errors[0], errors
