"""A connection made and tested in a real browser (issue 15.1 and 15.2), against the real sshd fixture.

A superuser adds an SFTP connection the way the add page says (choose the
kind, save, fill in its settings, save), presses “Test connection” and sees
the server's fingerprint, not pinned; presses “Pin this key”, tests again and
is connected. The organization's page then lists the connection as a link.
Screenshots go to test-artifacts/pages/ (gitignored).
"""

from __future__ import annotations

from connections.models import Connection
from tests import factories
from tests.test_pages_browser import (  # noqa: F401 (a pytest fixture, and the marks: a transactional database, Chromium)
    Visit,
    browser_page,
    log_in,
    pytestmark,
)


def message(page, level: str) -> str:
    return page.wait_for_selector(f".messagelist .{level}").inner_text()


def add_sftp_connection(page, visit: Visit, org, sshd) -> Connection:
    visit.go("/admin/connections/connection/add/", "connection-add")
    page.select_option("#id_organization", str(org.pk))
    page.fill("#id_name", "vendor")
    page.select_option("#id_kind", "sftp")
    page.click("input[name=_save]")
    assert message(page, "info") == "Now fill in the SFTP settings and save."
    assert page.input_value("#id_name") == "vendor"
    page.fill("#id_host", sshd.host)
    page.fill("#id_port", str(sshd.port))
    page.fill("#id_folder", str(sshd.root))
    page.fill("#id_username", sshd.username)
    page.fill("#id_password", sshd.password)
    visit.shot("connection-add-sftp-settings")
    page.click("input[name=_continue]")
    assert "was added successfully" in message(page, "success")
    return Connection.objects.get(name="vendor")


def test_a_superuser_adds_an_sftp_connection_tests_it_pins_its_key_and_connects(browser_page, live_server, superuser, sshd):
    org = factories.organization("Acme")
    page, visit = browser_page, Visit(browser_page, live_server.url)
    log_in(page, live_server.url, "root", "rootpass")
    conn = add_sftp_connection(page, visit, org, sshd)
    assert page.url.endswith(f"/admin/connections/connection/{conn.pk}/change/")
    assert "“Test connection” above reads the server's key" in page.inner_text(".field-host_key_fingerprint")
    visit.shot("connection-sftp-saved")

    fingerprint = f"ssh-ed25519 {sshd.host_key_fingerprint_sha256}"
    page.click("#test-connection button:text('Test connection')")
    assert f"Host key not pinned: {fingerprint}" in message(page, "warning")
    assert fingerprint in page.inner_text("#pin-host-key")
    assert "Not pinned." in page.inner_text(".field-host_key_fingerprint")
    visit.shot("connection-test-not-pinned")

    page.click("#pin-host-key button:text('Pin this key')")
    assert message(page, "success") == f"Pinned the host key {fingerprint} of Acme/vendor."
    assert not page.is_visible("#pin-host-key")
    assert page.inner_text(".field-host_key_fingerprint .readonly") == fingerprint

    page.click("#test-connection button:text('Test connection')")
    assert f"Acme/vendor: Connected to {sshd.host}:{sshd.port} as {sshd.username}" in message(page, "success")
    assert "Connected to" in page.inner_text(".field-test_message")
    assert sshd.password not in page.content()
    visit.shot("connection-test-passed")
    conn.refresh_from_db()
    assert (conn.host_key, conn.test_ok) == (sshd.host_key_line, True)

    visit.go(f"/admin/connections/organization/{org.pk}/change/", "organization-with-connections")
    page.click(".field-connection_list a:text('vendor (SFTP)')")
    page.wait_for_url(f"**/admin/connections/connection/{conn.pk}/change/")
