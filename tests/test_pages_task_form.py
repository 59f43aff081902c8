"""New/Edit Task: one form in SPEC sections, saved together, with a clear error for every bad value."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from tasks.models import CodeLocation, CodeRole, Notification, Task
from tests import factories
from tests.pages_support import database_connection, sftp_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(staff_runner):
    return factories.project("Nightly", owner=staff_runner)


@pytest.fixture
def conns():
    return {"db": database_connection(), "sftp": sftp_connection(), "web": factories.connection("web", name="raw", url="https://raw.example.test/")}


def form_data(conns, **overrides) -> dict:
    data = {
        "project": "", "name": "orders", "enabled": "on", "rank": "", "timeout_minutes": "60",
        "retry_max": "1", "retry_delay_minutes": "5", "retry_backoff": "1.0",
        "source_kind": "database", "source_connection": conns["db"].pk, "source_headers": "on", "source_path": "",
        "source_delimiter": "", "processing_entry": "", "processing_requirements": "",
        "query-location": "inline", "query-text": "select id, name from orders", "query-path": "", "query-url": "",
        "script-location": "inline", "script-text": "", "script-path": "", "script-url": "",
        "output_type": "csv", "output_name": "orders_%Y%m%d", "output_delimiter": ",", "output_headers": "on",
        "output_quoting": "minimal", "output_escape_char": "\\", "output_encoding": "utf-8", "output_line_ending": "lf",
        "output_line_suffix": "", "zip_name": "", "gpg_key": "",
        "param-TOTAL_FORMS": "2", "param-INITIAL_FORMS": "0", "param-MIN_NUM_FORMS": "0", "param-MAX_NUM_FORMS": "1000",
        "param-0-key": "@day", "param-0-entered_value": "'parse(%Y-%m-%d)'", "param-0-position": "0",
        "param-1-key": "@token", "param-1-entered_value": "s3cr3t-token", "param-1-sensitive": "on", "param-1-position": "1",
        "dest-TOTAL_FORMS": "1", "dest-INITIAL_FORMS": "0", "dest-MIN_NUM_FORMS": "0", "dest-MAX_NUM_FORMS": "1000",
        "dest-0-kind": "sftp", "dest-0-connection": conns["sftp"].pk, "dest-0-folder": "in", "dest-0-if_exists": "fail",
        "dest-0-position": "0",
        "success-send": "on", "success-recipients": "ops@example.test; 5551234567@vtext.test", "success-subject": "Orders",
        "success-message": "", "success-attach": "on",
        "failure-recipients": "", "failure-subject": "", "failure-message": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def new_task(client, project, data):
    return client.post(reverse("courier:task_new", args=[project.pk]), {**data, "project": project.pk})


def errors_of(response) -> list[str]:
    assert response.status_code == 200, "the form should be shown again with errors"
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>(.*?)</li>', response.content.decode())


def test_the_form_shows_its_sections_the_code_editor_and_toggles(client, staff_runner, project, conns):
    client.force_login(staff_runner)
    html = client.get(reverse("courier:task_new", args=[project.pk])).content.decode()
    for section in ("General", "Retries", "Parameters", "Data source", "Query or command", "Processing script",
                    "Output file", "Zip and encryption", "Destinations", "Email on success", "Email on failure"):
        assert f">{section}</h2>" in html, section
    assert '/static/vendor/codemirror/lib/codemirror.js' in html and "mode/sql/sql.js" in html and "mode/python/python.js" in html
    assert not re.search(r'<script[^>]+src="https?://', html)  # served from the project, no CDN
    assert 'class="code-editor"' in html and 'data-mode="text/x-sql"' in html
    # Fields of one source kind only, shown by the page's script.
    assert re.search(r'field-source_path"[^>]*data-show-field="source_kind" data-show-values="sftp ftp smb"', html)
    assert re.search(r'field-output_delimiter"[^>]*data-show-values="text"', html)
    # Connection options carry their kind, so the page offers only the right ones.
    assert re.search(rf'<option value="{conns["sftp"].pk}" data-kind="sftp"', html)


def test_a_new_task_is_saved_with_all_its_parts(client, staff_runner, project, conns):
    client.force_login(staff_runner)
    response = new_task(client, project, form_data(conns))
    task = Task.objects.get(name="orders")
    assert response.status_code == 302 and response["Location"] == reverse("courier:task_detail", args=[task.pk])
    assert (task.project, task.source_connection, task.retry_max) == (project, conns["db"], 1)
    assert task.code_locations.get(role=CodeRole.SOURCE).text == "select id, name from orders"
    assert not task.code_locations.filter(role=CodeRole.PROCESSING).exists()
    params = {p.key: p for p in task.parameters.all()}
    assert params["@day"].value == "'parse(%Y-%m-%d)'"
    assert params["@token"].sensitive and params["@token"].value == "" and params["@token"].secret_value == "s3cr3t-token"
    assert task.destinations.get().connection == conns["sftp"]
    success = task.notifications.get()
    assert (success.event, success.attach, success.subject) == ("success", True, "Orders")
    assert LogEntry.objects.get(object_id=str(task.pk)).is_addition()


@pytest.mark.parametrize("overrides, message", [
    ({"source_connection": "SFTP"}, "“Acme/drop” is a SFTP connection; this source needs a Database (ODBC) connection."),
    ({"source_kind": "sftp", "source_connection": "SFTP"}, "A file source needs a remote path."),
    ({"dest-0-connection": "FTP"}, "“Acme/ftp” is a FTP connection, not SFTP."),
    ({"query-text": "  "}, "Write the code here, or choose where it is kept."),
    ({"query-location": "sftp", "query-path": "sql/orders.sql"}, "Code kept on SFTP needs a SFTP connection."),
    ({"query-location": "web", "query-url": "ftp://x/y.sql"}, "Give an http:// or https:// URL."),
    ({"query-location": "gitlab", "query-url": "https://g/x", "query-connection": "WEB"}, "“Acme/raw” is a Web URL connection, not GitLab."),
    ({"retry_backoff": "0.5"}, "The backoff multiplier must be 1 or more."),
    ({"zip_enabled": "on"}, "Give the zip archive a name."),
    ({"success-recipients": "ops@example.test, not-an-address"}, "Not an email address: not-an-address."),
    ({"failure-send": "on"}, "Give at least one address."),
    ({"param-1-key": "@day"}, "Please correct the duplicate values below."),
    ({"param-1-key": "a=b"}, "A key may not be empty or contain “=”, “:” or a line break."),
    ({"timeout_minutes": "-1"}, "Ensure this value is greater than or equal to 0."),
    ({"name": ""}, "This field is required."),
])
def test_every_bad_value_gets_a_clear_field_error(client, staff_coder, project, conns, overrides, message):
    names = {"SFTP": conns["sftp"].pk, "FTP": factories.connection("ftp", host="h").pk, "WEB": conns["web"].pk}
    overrides = {key: names.get(value, value) for key, value in overrides.items()}
    client.force_login(staff_coder)
    response = new_task(client, project, form_data(conns, **overrides))
    assert message in [re.sub("&quot;|&#x27;", "", e) for e in errors_of(response)] or message in response.content.decode()
    assert not Task.objects.exists()


def test_a_name_used_in_the_project_is_refused(client, staff_runner, project, conns):
    factories.query_task(project, conns["db"], "select 1", name="orders")
    client.force_login(staff_runner)
    response = new_task(client, project, form_data(conns))
    assert "Task with this Project and Name already exists." in errors_of(response)
    assert Task.objects.count() == 1


def test_fields_of_other_kinds_are_not_validated_or_kept(client, staff_coder, project, conns):
    """A script-only task ignores a connection and query left in the hidden fields."""
    client.force_login(staff_coder)
    data = form_data(conns, source_kind="python", **{"script-text": "print('hi')", "use_script": None})
    response = new_task(client, project, data)
    assert response.status_code == 302, errors_of(response)
    task = Task.objects.get()
    assert task.source_connection is None
    assert [c.role for c in task.code_locations.all()] == [CodeRole.PROCESSING]


def test_the_scripts_network_switch_is_on_by_default_and_a_cleared_box_is_saved_and_shown(client, staff_coder, project, conns):
    client.force_login(staff_coder)
    html = client.get(reverse("courier:task_new", args=[project.pk])).content.decode()
    processing = html[html.index(">Processing script</h2>"):html.index(">Output file</h2>")]
    assert re.search(r'field-script_network"[^>]*data-show-field="use_script"', processing)
    assert re.search(r'<input type="checkbox" name="script_network"[^>]*checked', processing)
    # A person clears the box: the browser then sends no value for it.
    response = new_task(client, project, form_data(conns, source_kind="python", **{"script-text": "print('hi')"}))
    assert response.status_code == 302, errors_of(response)
    assert Task.objects.get().script_network is False
    assert "The script runs without network access." in client.get(response["Location"]).content.decode()


def test_editing_changes_the_task_keeps_secrets_and_logs_what_changed(client, staff_coder, project, conns):
    client.force_login(staff_coder)
    new_task(client, project, form_data(conns))
    task = Task.objects.get()
    html = client.get(reverse("courier:task_edit", args=[task.pk])).content.decode()
    assert "s3cr3t-token" not in html
    params = list(task.parameters.order_by("position"))
    dest = task.destinations.get()
    note = task.notifications.get()
    data = form_data(
        conns, name="orders-v2", source_kind="ssh", source_connection=factories.connection("ssh", host="h", username="u").pk,
        **{"query-text": "ls -l", "param-INITIAL_FORMS": "2", "param-0-id": params[0].pk, "param-1-id": params[1].pk,
           "param-1-entered_value": "", "dest-INITIAL_FORMS": "1", "dest-0-id": dest.pk, "dest-0-DELETE": "on",
           "success-send": None, "success-recipients": note.recipients},
    )
    response = client.post(reverse("courier:task_edit", args=[task.pk]), {**data, "project": project.pk})
    assert response.status_code == 302, errors_of(response)
    task.refresh_from_db()
    assert (task.name, task.source_kind) == ("orders-v2", "ssh")
    assert CodeLocation.objects.get(task=task, role=CodeRole.SOURCE).text == "ls -l"
    assert task.parameters.get(key="@token").secret_value == "s3cr3t-token"  # blank keeps the stored value
    assert not task.destinations.exists() and not Notification.objects.filter(task=task).exists()
    message = LogEntry.objects.filter(object_id=str(task.pk)).order_by("-id").first().get_change_message()
    assert message.startswith("Changed ") and "Name" in message and "destinations" in message and "success email" in message


def test_a_viewer_may_not_open_the_forms(client, staff_viewer, project):
    client.force_login(staff_viewer)
    assert client.get(reverse("courier:task_new", args=[project.pk])).status_code == 403
    task = Task.objects.create(project=project, name="t", source_kind="python")
    assert client.get(reverse("courier:task_edit", args=[task.pk])).status_code == 403
    assert client.get(reverse("courier:task_delete", args=[task.pk])).status_code == 403


def test_the_parameter_rows_leave_the_shared_parameter_form_alone(client, superuser, project, conns):
    """The task's and the project's formsets must not add their foreign key to the parameter form they share."""
    client.force_login(superuser)
    task = Task.objects.create(project=project, name="t", source_kind="python")
    assert client.get(reverse("courier:task_edit", args=[task.pk])).status_code == 200
    assert client.get(reverse("courier:project_edit", args=[project.pk])).status_code == 200
    assert client.get(reverse("courier:task_edit", args=[task.pk])).status_code == 200


@pytest.mark.parametrize(("dialect", "read_only", "sql", "message"), [
    ("sqlite", False, "ATTACH DATABASE '/srv/courier/var/courier.sqlite3' AS c",
     "The query may not run on Acme/lite: SQLite connections may not run ATTACH statements "
     "(statement 1: ATTACH DATABASE '/srv/courier/var/courier.sqlite3' AS c)."),
    ("sqlite", True, "SELECT 1;\nPRAGMA query_only = 0", "SQLite connections may not run PRAGMA statements (statement 2: PRAGMA query_only = 0)."),
    ("postgresql", True, "SELECT 1;\nCOMMIT;\nUPDATE t SET n = 1", "Read-only PostgreSQL connections may not run COMMIT statements (statement 2: COMMIT)."),
])
def test_a_query_its_connection_would_refuse_is_a_field_error(client, staff_runner, project, conns, dialect, read_only, sql, message):
    conn = factories.connection("database", name="lite", dialect=dialect, read_only=read_only, odbc="Driver={SQLite3};Database=/x;")
    client.force_login(staff_runner)
    response = new_task(client, project, form_data(conns, source_connection=conn.pk, **{"query-text": sql}))
    assert any(message in re.sub("&#x27;", "'", e) for e in errors_of(response)), errors_of(response)
    assert not Task.objects.exists()


def test_the_same_words_in_strings_and_comments_are_saved(client, staff_runner, project, conns):
    conn = factories.connection("database", name="lite", dialect="sqlite", read_only=True, odbc="Driver={SQLite3};Database=/x;")
    client.force_login(staff_runner)
    sql = "-- ATTACH DATABASE 'x' AS c\nSELECT 'PRAGMA query_only = 0' AS \"vacuum\" FROM orders"
    response = new_task(client, project, form_data(conns, source_connection=conn.pk, **{"query-text": sql}))
    assert response.status_code == 302, errors_of(response)
    assert Task.objects.get().code_locations.get(role=CodeRole.SOURCE).text == sql
