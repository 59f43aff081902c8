"""Names are plain text on one line (SPEC §12): a control character in a name is refused with a field error.

Organizations, connections, projects and tasks, typed into the pages and the
admin as a person would: the form comes back with the error under the name
and nothing is saved.
"""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from connections.models import Connection, Organization
from projects.models import Project
from tasks.models import Task
from tests import factories
from tests.test_pages_projects import project_form
from tests.test_pages_task_form import form_data, new_task

pytestmark = pytest.mark.django_db

ESCAPE = "Night\x1b[2Jly"  # an ANSI sequence that would clear a terminal showing the log
REFUSED_ESCAPE = "The name contains a control character (U+001B); use plain text on one line."


def field_errors(response, field: str) -> list[str]:
    assert response.status_code == 200, "the form should come back with its errors"
    page = response.content.decode()
    row = re.search(rf'<div class="[^"]*field-{field}\b.*?</div>\s*</div>', page, re.S)
    block = row.group(0) if row else page
    return [html.unescape(e) for e in re.findall(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>(.*?)</li>', block)]


@pytest.mark.parametrize(("name", "message"), [
    (ESCAPE, REFUSED_ESCAPE),
    ("Week\nly", "The name contains a control character (U+000A); use plain text on one line."),
    ("Week\x00ly", "Null characters are not allowed."),  # Django's own form check comes first for NUL
    ("We\x07ek\x85ly", "The name contains control characters (U+0007, U+0085); use plain text on one line."),
])
def test_the_new_project_page_refuses_a_name_with_a_control_character(client, staff_runner, name, message):
    client.force_login(staff_runner)
    assert client.get(reverse("courier:project_new")).status_code == 200

    response = client.post(reverse("courier:project_new"), project_form(owner=staff_runner.pk, name=name))

    assert message in field_errors(response, "name")
    assert not Project.objects.exists()


def test_the_task_page_refuses_a_task_name_with_a_control_character(client, staff_runner):
    project = factories.project("Nightly", owner=staff_runner)
    conns = {"db": factories.connection("database", name="db", dialect="sqlite", odbc="Driver={SQLite3};Database=x;"),
             "sftp": factories.connection("sftp", name="drop", host="sftp.example.test", username="u")}
    client.force_login(staff_runner)
    assert client.get(reverse("courier:task_new", args=[project.pk])).status_code == 200

    response = new_task(client, project, form_data(conns, name="orders\x1b[0m"))

    assert "The name contains a control character (U+001B); use plain text on one line." in field_errors(response, "name")
    assert not Task.objects.exists()


def test_the_admin_refuses_an_organization_name_with_a_control_character(client, superuser):
    client.force_login(superuser)
    assert client.get("/admin/connections/organization/add/").status_code == 200

    response = client.post("/admin/connections/organization/add/", {
        "name": ESCAPE, "description": "", "address": "", "contact_name": "", "contact_email": "", "contact_phone": "",
    })

    assert REFUSED_ESCAPE in field_errors(response, "name")
    assert not Organization.objects.exists()


def test_the_admin_refuses_a_connection_name_with_a_control_character(client, superuser, tmp_path):
    org = factories.organization()
    client.force_login(superuser)
    assert client.get("/admin/connections/connection/add/?kind=folder").status_code == 200

    response = client.post("/admin/connections/connection/add/?kind=folder", {
        "organization": org.pk, "name": "out\tbox", "kind": "folder", "description": "", "folder": str(tmp_path),
    })

    assert "The name contains a control character (U+0009); use plain text on one line." in field_errors(response, "name")
    assert not Connection.objects.exists()


def test_a_plain_name_with_accents_and_symbols_is_fine(client, staff_runner):
    client.force_login(staff_runner)

    response = client.post(reverse("courier:project_new"), project_form(owner=staff_runner.pk, name="Zoë’s “Ålesund” – 10% €"))

    assert response.status_code == 302
    assert Project.objects.get().name == "Zoë’s “Ålesund” – 10% €"
