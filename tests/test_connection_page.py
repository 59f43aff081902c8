"""A connection's own admin page (issue 15.2, SPEC §7): its “Test connection” button, the tasks that use it,
and an organization's page listing its connections.

Everything is done as a browser does it: GET the page, post the form the
page holds (with its CSRF token), follow the redirect and read what the page
then says. The SFTP connection is tested against the real sshd fixture.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from connections.models import Connection
from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.form_support import browser_form
from tests.ssh_witness import ssh_witness  # noqa: F401 - a fixture
from tests.test_host_keys import csrf_client

pytestmark = pytest.mark.django_db


def change_url(conn: Connection) -> str:
    return f"/admin/connections/connection/{conn.pk}/change/"


def page_of(response) -> str:
    return unescape(response.content.decode())


def form_action(html: str, form_id: str) -> str:
    form = re.search(rf'<form[^>]*id="{form_id}"[^>]*>', html)
    assert form, f"the page has no <form id={form_id}>"
    return unescape(re.search(r'action="([^"]+)"', form.group(0)).group(1))


def press(client, page_url: str, form_id: str):
    """GET the page, press the button of its form `form_id` (sending what the browser sends), follow the redirect."""
    html = client.get(page_url).content.decode()
    data = browser_form(html, form_id)[0]
    return client.post(form_action(html, form_id), data, follow=True)


def button_label(html: str) -> str:
    form = re.search(r'<form[^>]*id="test-connection"[^>]*>(.*?)</form>', html, re.S)
    assert form, "the change page has no “Test connection” form"
    return re.search(r"<button[^>]*>([^<]+)</button>", form.group(1)).group(1).strip()


def messages_of(html: str) -> list[tuple[str, str]]:
    """(level, text) of each message the admin shows at the top of the page."""
    listed = re.search(r'<ul class="messagelist">(.*?)</ul>', html, re.S)
    return re.findall(r'<li class="(\w+)">(.*?)</li>', listed.group(1), re.S) if listed else []


@pytest.fixture
def new_sftp(sshd):
    """An SFTP connection to the real sshd as a superuser saves it: no host key pinned yet."""
    return factories.connection("sftp", name="drop", host=sshd.host, port=sshd.port, username=sshd.username,
                                password=sshd.password, folder=str(sshd.root))


def test_the_button_tests_shows_the_fingerprint_to_pin_and_after_pinning_connects(superuser, sshd, new_sftp):
    client = csrf_client(superuser)
    page = page_of(client.get(change_url(new_sftp)))
    assert button_label(page) == "Test connection"
    assert 'id="pin-host-key"' not in page

    tested = press(client, change_url(new_sftp), "test-connection")
    assert tested.redirect_chain[-1][0] == change_url(new_sftp)
    page = page_of(tested)
    fingerprint = f"ssh-ed25519 {sshd.host_key_fingerprint_sha256}"
    assert ("warning", f"Acme/drop: Host key not pinned: {fingerprint}, read from [{sshd.host}]:{sshd.port} without logging in. "
            "Nothing else was sent to the server. A superuser checks this fingerprint with the server's administrator "
            "and pins it: “Pin this key” on the connection's admin page, or check_connections NAME --pin FINGERPRINT.") \
        in messages_of(page)
    fields = browser_form(page, "pin-host-key")[0]
    assert fields["fingerprint"] == fingerprint
    new_sftp.refresh_from_db()
    assert (new_sftp.test_ok, new_sftp.host_key) == (False, "")

    pinned = page_of(press(client, change_url(new_sftp), "pin-host-key"))
    assert ("success", f"Pinned the host key {fingerprint} of Acme/drop.") in messages_of(pinned)

    tested = page_of(press(client, change_url(new_sftp), "test-connection"))
    connected = [text for level, text in messages_of(tested) if level == "success"]
    assert len(connected) == 1 and connected[0].startswith(f"Acme/drop: Connected to {sshd.host}:{sshd.port} as {sshd.username}")
    new_sftp.refresh_from_db()
    assert new_sftp.test_ok is True and new_sftp.tested_at is not None
    # The page's “Last test” shows the same outcome, and the audit trail has each test with who did it.
    assert "Connected to" in tested.split("Last test", 1)[1]
    tests = LogEntry.objects.filter(object_id=str(new_sftp.pk), change_message__startswith="Tested:").order_by("pk")
    assert [(e.user, e.change_message.split(".")[0]) for e in tests] == [(superuser, "Tested: failed"), (superuser, "Tested: passed")]


def test_a_failing_test_says_why_as_an_error(superuser, sshd):
    conn = factories.sftp_connection(sshd, name="wrong", password="not-the-password")
    page = page_of(press(csrf_client(superuser), change_url(conn), "test-connection"))
    errors = [text for level, text in messages_of(page) if level == "error"]
    assert len(errors) == 1 and errors[0].startswith("Acme/wrong: ") and "refused" in errors[0]
    assert "not-the-password" not in page


def test_the_button_is_a_csrf_protected_post_for_superusers_only(superuser, staff_runner, new_sftp):
    client = csrf_client(superuser)
    action = form_action(client.get(change_url(new_sftp)).content.decode(), "test-connection")
    assert client.get(action).status_code == 405
    assert client.post(action, {}).status_code == 403  # no CSRF token
    staff = Client()
    staff.force_login(staff_runner)
    assert staff.post(action).status_code == 403
    assert Client().post(action).status_code == 302  # anonymous: to the login page
    assert Connection.objects.get(pk=new_sftp.pk).tested_at is None
    assert not LogEntry.objects.filter(object_id=str(new_sftp.pk)).exists()


def test_the_add_page_has_no_test_button_and_a_missing_connection_is_a_404(client, superuser, new_sftp):
    client.force_login(superuser)
    assert 'id="test-connection"' not in client.get("/admin/connections/connection/add/?kind=sftp").content.decode()
    action = form_action(client.get(change_url(new_sftp)).content.decode(), "test-connection")
    assert client.post(action.replace(f"/{new_sftp.pk}/", "/999999/")).status_code == 404


def test_the_texts_that_send_you_to_the_button_name_its_real_label(client, superuser, ssh_witness, sqlite_odbc):
    """The help beside an unpinned host key and a run that failed on one both name the button as it is labelled."""
    conn = factories.connection("sftp", name="vendor", host=ssh_witness.host, port=ssh_witness.port, username="u",
                                password="pw", host_key="")
    client.force_login(superuser)
    page = page_of(client.get(change_url(conn)))
    label = button_label(page)
    assert f"“{label}” above reads the server's key" in page

    source = factories.connection("database", name="db", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 1 as one", output_name="one.csv")
    factories.destination(task, conn)
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert f"“{label}”" in run.error and "“Pin this key”" in run.error


def test_tasks_using_it_link_to_their_task_details(client, superuser, sqlite_odbc):
    conn = factories.connection("database", name="warehouse", dialect="sqlite", odbc=sqlite_odbc.odbc)
    drop = factories.connection("sftp", name="drop", host="sftp.example.test", username="u")
    night, day = factories.project("Night"), factories.project("Day")
    source = factories.query_task(night, conn, "select 1", name="orders")
    delivers = factories.query_task(day, conn, "select 2", name="invoices")
    factories.destination(delivers, drop)
    code = Task.objects.create(project=day, name="script", source_kind="python")
    CodeLocation.objects.create(task=code, role=CodeRole.PROCESSING, location="sftp", connection=drop, path="job.py")
    factories.query_task(night, factories.connection("database", name="other", dialect="sqlite", odbc=sqlite_odbc.odbc),
                         "select 3", name="elsewhere")
    client.force_login(superuser)

    def linked(c: Connection) -> list[tuple[str, str]]:
        used = re.search(r'<div class="form-row field-used_by">(.*?)</div>\s*</div>', client.get(change_url(c)).content.decode(), re.S)
        return re.findall(r'<a href="([^"]+)">([^<]+)</a>', used.group(1))

    assert linked(conn) == [(f"/admin/courier/tasks/{delivers.pk}/", "Day/invoices"), (f"/admin/courier/tasks/{source.pk}/", "Night/orders")]
    assert linked(drop) == [(f"/admin/courier/tasks/{delivers.pk}/", "Day/invoices"), (f"/admin/courier/tasks/{code.pk}/", "Day/script")]
    href, name = linked(conn)[1]
    details = client.get(href)
    assert details.status_code == 200 and "orders" in details.content.decode()
    unused = factories.connection("ftp", name="spare", host="ftp.example.test")
    assert "No task uses it." in client.get(change_url(unused)).content.decode()


def test_an_organization_lists_its_connections_as_links(client, superuser):
    acme = factories.organization("Acme")
    drop = factories.connection("sftp", name="drop", host="sftp.acme.test", username="u")
    share = factories.connection("smb", name="share", host="fs.acme.test", share="data", username="u")
    factories.connection("ftp", name="legacy", org="Globex", host="ftp.globex.test")
    client.force_login(superuser)
    page = page_of(client.get(f"/admin/connections/organization/{acme.pk}/change/"))
    listed = re.search(r'<div class="form-row field-connection_list">(.*?)</div>\s*</div>', page, re.S)
    assert listed, "the organization's page does not list its connections"
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', listed.group(1))
    assert links[:2] == [(change_url(drop), "drop (SFTP)"), (change_url(share), "share (SMB)")]
    assert links[2] == (f"/admin/connections/connection/add/?organization={acme.pk}", "Add a connection")
    assert "legacy" not in listed.group(1)
    assert "drop" in client.get(links[0][0]).content.decode()
    # The add link comes with the organization already chosen.
    add = client.get(links[2][0]).content.decode()
    assert re.search(rf'<option value="{acme.pk}" selected>Acme</option>', add)

    globex = factories.organization("Empty Ltd")
    empty = page_of(client.get(f"/admin/connections/organization/{globex.pk}/change/"))
    assert "No connection yet." in empty
    assert "field-connection_list" not in page_of(client.get("/admin/connections/organization/add/"))
