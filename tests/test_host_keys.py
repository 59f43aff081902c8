"""Host keys before credentials (SPEC §8.2): an unpinned SFTP/SSH server gets no login, only a key exchange.

Two witnesses that nothing is sent: the real sshd's own log (an attempt as an
unknown user is logged “Invalid user …”) and a paramiko server that records
every `check_auth_*` call. Each test also shows its witness does see a login
once the key is pinned, so a silent witness means something.
"""

from __future__ import annotations

import re
import secrets
import time
from html import unescape

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.test import Client

from connections.checks import check_connection
from connections.host_keys import PinRefused, pin_host_key
from connections.models import Connection
from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tests import factories
from tests.ssh_witness import LoginAttempt, ssh_witness  # noqa: F401 - ssh_witness is a fixture

pytestmark = pytest.mark.django_db


def canary() -> str:
    return f"canary-{secrets.token_hex(6)}"


def unpinned(server, kind="sftp", **fields):
    values = dict(host=server.host, port=server.port, username=canary(), password=canary(), host_key="")
    values.update(fields)
    return factories.connection(kind, **values)


def sshd_log_lines(sshd, needle: str) -> list[str]:
    return [line for line in sshd.log.read_text(errors="replace").splitlines() if needle in line]


def wait_for_log(sshd, needle: str, more_than: int = 0, timeout: float = 5.0) -> list[str]:
    """sshd's log lines holding `needle`, once there are more than `more_than` (sshd writes them as it goes)."""
    deadline = time.monotonic() + timeout
    while len(found := sshd_log_lines(sshd, needle)) <= more_than and time.monotonic() < deadline:
        time.sleep(0.05)
    return found[more_than:]


@pytest.mark.parametrize("kind", ["sftp", "ssh"])
def test_an_unpinned_test_shows_the_fingerprint_and_never_logs_in_to_sshd(kind, sshd):
    conn = unpinned(sshd, kind)
    closed_before_login = len(sshd_log_lines(sshd, "[preauth]"))
    result = check_connection(conn)

    assert not result.ok
    assert f"Host key not pinned: ssh-ed25519 {sshd.host_key_fingerprint_sha256}" in result.message  # ssh-keygen -lf's
    conn.refresh_from_db()
    assert (conn.test_ok, conn.host_key) == (False, "")
    # sshd saw a connection that ended before authentication (“Connection closed by … [preauth]”)...
    assert wait_for_log(sshd, "[preauth]", more_than=closed_before_login)
    assert sshd_log_lines(sshd, conn.username) == []  # ...and not even the user name
    assert conn.password not in result.message

    # The witness works: once pinned, the same test does try to log in, and sshd logs it.
    pin_host_key(conn, f"ssh-ed25519 {sshd.host_key_fingerprint_sha256}")
    refused = check_connection(conn)
    assert not refused.ok and "refused" in refused.message
    assert wait_for_log(sshd, f"Invalid user {conn.username}")


def test_the_recording_server_sees_a_key_exchange_but_no_login_until_pinned(ssh_witness):
    conn = unpinned(ssh_witness, "sftp")
    result = check_connection(conn)

    ssh_witness.wait_for_key_exchanges(1)
    assert ssh_witness.key_exchanges == 1
    assert ssh_witness.attempts == []
    assert f"ssh-ed25519 {ssh_witness.fingerprint_from_ssh_keygen}" in result.message

    pin_host_key(conn, f"ssh-ed25519 {ssh_witness.fingerprint_from_ssh_keygen}")
    conn.refresh_from_db()
    assert conn.host_key == ssh_witness.host_key_line
    check_connection(conn)
    assert LoginAttempt("password", conn.username, conn.password) in ssh_witness.attempts


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def run_test_action(client, conn) -> str:
    """The “Test the selected connections” action, posted as the browser does; the page it lands on."""
    changelist = "/admin/connections/connection/"
    data = {"action": "test_connections", "_selected_action": [conn.pk], "csrfmiddlewaretoken": csrf_token(client, changelist)}
    return unescape(client.post(changelist, data, follow=True).content.decode())


def pin_form(html: str) -> tuple[str, dict[str, str]]:
    """The “Pin this key” form of a change page: where it posts and the fields a browser would send."""
    form = re.search(r'<form[^>]*id="pin-host-key"[^>]*>(.*?)</form>', html, re.S)
    assert form, "the change page has no “Pin this key” form"
    action = re.search(r'action="([^"]+)"', form.group(0)).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1)))
    assert "Pin this key" in form.group(1)
    return action, {name: unescape(value) for name, value in fields.items()}


def change_page(client, conn) -> str:
    return unescape(client.get(f"/admin/connections/connection/{conn.pk}/change/").content.decode())


def test_superuser_tests_sees_the_fingerprint_pins_it_in_one_click_and_the_next_test_logs_in(superuser, sshd):
    conn = factories.connection("sftp", host=sshd.host, port=sshd.port, username=sshd.username, password=sshd.password,
                                folder=str(sshd.root))
    client = csrf_client(superuser)
    assert 'id="pin-host-key"' not in change_page(client, conn)  # nothing read yet

    tested = run_test_action(client, conn)
    assert f"Host key not pinned: ssh-ed25519 {sshd.host_key_fingerprint_sha256}" in tested

    page = change_page(client, conn)
    assert sshd.host_key_fingerprint_sha256 in page
    action, fields = pin_form(page)
    pinned = unescape(client.post(action, fields, follow=True).content.decode())
    assert f"Pinned the host key ssh-ed25519 {sshd.host_key_fingerprint_sha256}" in pinned
    conn.refresh_from_db()
    assert conn.host_key == sshd.host_key_line
    entry = LogEntry.objects.filter(object_id=str(conn.pk)).latest("pk")
    assert entry.user == superuser
    assert entry.get_change_message() == f"Pinned the host key ssh-ed25519 {sshd.host_key_fingerprint_sha256} of Acme/sftp."
    assert 'id="pin-host-key"' not in change_page(client, conn)

    tested = run_test_action(client, conn)
    assert f"Connected to {sshd.host}:{sshd.port} as {sshd.username}" in tested
    conn.refresh_from_db()
    assert conn.test_ok is True


def test_a_key_that_changed_between_show_and_pin_is_not_pinned(superuser, ssh_witness):
    conn = unpinned(ssh_witness, "sftp")
    client = csrf_client(superuser)
    run_test_action(client, conn)
    seen = ssh_witness.fingerprint_from_ssh_keygen
    action, fields = pin_form(change_page(client, conn))
    assert seen in fields["fingerprint"]

    ssh_witness.new_host_key()  # the server (or someone in between) now shows another key...
    check_connection(conn)  # ...to a later test, by anyone
    refused = unescape(client.post(action, fields, follow=True).content.decode())
    assert "not pinned" in refused and ssh_witness.fingerprint_from_ssh_keygen in refused
    conn.refresh_from_db()
    assert conn.host_key == ""

    # The page now offers the new key, and that one pins.
    action, fields = pin_form(change_page(client, conn))
    client.post(action, fields)
    conn.refresh_from_db()
    assert conn.host_key == ssh_witness.host_key_line
    assert ssh_witness.attempts == []


def test_a_key_fetched_before_the_address_changed_is_not_pinned(ssh_witness, sshd):
    conn = unpinned(ssh_witness, "sftp")
    check_connection(conn)
    shown = f"ssh-ed25519 {ssh_witness.fingerprint_from_ssh_keygen}"
    Connection.objects.filter(pk=conn.pk).update(port=sshd.port)  # pointed at another server since
    conn.refresh_from_db()
    with pytest.raises(PinRefused, match="test it again"):
        pin_host_key(conn, shown)
    assert Connection.objects.get(pk=conn.pk).host_key == ""


def test_pinning_is_a_csrf_protected_post_for_superusers_only(superuser, staff_runner, ssh_witness):
    conn = unpinned(ssh_witness, "sftp")
    check_connection(conn)
    client = csrf_client(superuser)
    action, fields = pin_form(change_page(client, conn))

    assert client.get(action).status_code == 405
    assert client.post(action, {k: v for k, v in fields.items() if k != "csrfmiddlewaretoken"}).status_code == 403
    staff = Client()
    staff.force_login(staff_runner)
    assert staff.post(action, {"fingerprint": fields["fingerprint"]}).status_code == 403
    assert Connection.objects.get(pk=conn.pk).host_key == ""


def test_a_run_with_an_unpinned_connection_fails_before_connecting(sqlite_odbc, ssh_witness):
    source = factories.connection("database", name="db", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 1 as one", output_name="one.csv")
    factories.destination(task, unpinned(ssh_witness, "sftp", name="vendor"))
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()

    assert run.status == RunStatus.FAILED and run.permanent
    assert "Acme/vendor has no pinned host key" in run.error
    assert "presses “Test connection” on the connection's admin page and then “Pin this key”" in run.error
    assert ssh_witness.accepted == 0 and ssh_witness.attempts == []


def test_check_connections_prints_the_fingerprint_and_pins_only_the_key_named(ssh_witness, capsys):
    conn = unpinned(ssh_witness, "sftp", name="box")
    fingerprint = ssh_witness.fingerprint_from_ssh_keygen
    with pytest.raises(CommandError) as failed:
        call_command("check_connections", "Acme/box")
    assert failed.value.returncode == 1
    out = capsys.readouterr().out
    assert f"FAILED Acme/box: Host key not pinned: ssh-ed25519 {fingerprint}" in out
    assert "--pin" in out

    with pytest.raises(CommandError) as wrong:
        call_command("check_connections", "Acme/box", "--pin", "SHA256:" + "A" * 43)
    assert wrong.value.returncode == 1 and "not pinned" in str(wrong.value)
    assert Connection.objects.get(pk=conn.pk).host_key == ""

    with pytest.raises(CommandError) as unnamed:
        call_command("check_connections", "--pin", fingerprint)
    assert unnamed.value.returncode == 2 and "one connection" in str(unnamed.value)

    with pytest.raises(CommandError):  # pinned, then the test logs in: the witness refuses the canary login
        call_command("check_connections", "Acme/box", "--pin", fingerprint)
    out = capsys.readouterr().out
    assert f"Pinned the host key ssh-ed25519 {fingerprint}" in out
    assert Connection.objects.get(pk=conn.pk).host_key == ssh_witness.host_key_line
    assert [a.method for a in ssh_witness.attempts] == ["password"]
