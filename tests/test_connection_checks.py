"""“Test connection” for every kind (admin action and `manage.py check_connections`), and host-key pinning."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from connections.checks import check_connection
from connections.models import Connection
from tasks.models import CodeLocation
from tests import factories
from tests.fake_gitlab import TOKEN, gitlab  # noqa: F401 - gitlab is a fixture
from tests.file_servers import file_connection
from tests.servers_common import free_port

pytestmark = pytest.mark.django_db

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.mark.parametrize("kind", ["sftp", "ftp", "ftps", "smb"])
def test_file_servers_pass(kind, request, tmp_path):
    conn, _ = file_connection(request, kind, tmp_path)
    result = check_connection(conn)
    assert result.ok, result.message
    conn.refresh_from_db()
    assert conn.test_ok is True and conn.tested_at is not None
    assert conn.test_message in result.message


@pytest.mark.parametrize("fixture", ["pg_odbc", "mariadb_odbc", "sqlite_odbc"])
def test_databases_pass(fixture, request):
    db = request.getfixturevalue(fixture)
    result = check_connection(factories.connection("database", dialect=db.dialect, odbc=db.odbc))
    assert result.ok, result.message
    assert {"pg_odbc": "PostgreSQL", "mariadb_odbc": "MariaDB", "sqlite_odbc": "SQLite"}[fixture].lower() in result.message.lower()


def test_a_failure_is_recorded_with_its_reason_and_no_secret():
    conn = factories.connection("database", name="tds", dialect="mssql",
                                odbc=f"Driver={{FreeTDS}};Server=127.0.0.1;Port={free_port()};UID=u;PWD=Very-Secret-1;", login_timeout=5)
    result = check_connection(conn)
    assert not result.ok
    conn.refresh_from_db()
    assert conn.test_ok is False
    assert "08S01" in conn.test_message
    assert "Very-Secret-1" not in conn.test_message


def test_gitlab_web_and_folder(gitlab, http_server, tmp_path, settings):
    settings.COURIER_ALLOW_LOCAL_URLS = True  # both servers listen on 127.0.0.1
    assert check_connection(factories.connection("gitlab", url=gitlab.url, token=TOKEN)).ok
    refused = check_connection(factories.connection("gitlab", name="bad-token", url=gitlab.url, token="nope-token"))
    assert not refused.ok and "401" in refused.message

    web = factories.connection("web", url=http_server.url, header="X-Key", token="k3y-value")
    assert "nothing to fetch" in check_connection(web).message
    (http_server.root / "a.sql").write_text("SELECT 1")
    task = factories.query_task(factories.project(), None, "")
    CodeLocation.objects.filter(task=task).update(location="web", connection=web, url=f"{http_server.url}/a.sql")
    result = check_connection(web)
    assert result.ok and "Fetched 1 URL" in result.message
    assert http_server.received[-1].headers["X-Key"] == "k3y-value"

    assert check_connection(factories.connection("folder", folder=str(tmp_path))).ok
    assert not check_connection(factories.connection("folder", name="gone", folder=str(tmp_path / "missing"))).ok


@pytest.mark.parametrize("kind", ["sftp", "ssh"])
def test_a_pinned_key_is_checked_on_every_test_and_a_change_is_refused(kind, sshd):
    """Pinning itself (the key read without logging in) is in tests/test_host_keys.py."""
    conn = factories.connection(kind, host=sshd.host, port=sshd.port, username=sshd.username, password=sshd.password,
                                host_key=sshd.host_key_line, folder=str(sshd.root) if kind == "sftp" else "")
    result = check_connection(conn)
    assert result.ok, result.message
    conn.refresh_from_db()
    assert (conn.host_key, conn.pending_host_key) == (sshd.host_key_line, "")

    Connection.objects.filter(pk=conn.pk).update(host_key=OTHER_KEY)  # as if the server's key changed
    conn.refresh_from_db()
    refused = check_connection(conn)
    assert not refused.ok
    assert "does not match the key pinned" in refused.message and "Refusing to connect" in refused.message
    assert f"server offered ssh-ed25519 {sshd.host_key_fingerprint_sha256}" in refused.message
    conn.refresh_from_db()
    assert (conn.host_key, conn.pending_host_key, conn.test_ok) == (OTHER_KEY, "", False)  # nothing offered to pin


def test_a_wrong_password_with_a_pinned_key_is_refused(sshd):
    conn = factories.connection("ssh", host=sshd.host, port=sshd.port, username=sshd.username, password="wrong-pass",
                                host_key=sshd.host_key_line)
    result = check_connection(conn)
    assert not result.ok and "refused" in result.message
    assert "wrong-pass" not in result.message


def test_check_connections_command(sshd, sqlite_odbc, capsys):
    factories.connection("database", name="local", dialect="sqlite", odbc=sqlite_odbc.odbc)
    factories.connection("ssh", name="box", org="Ops/EU", host=sshd.host, port=sshd.port, username=sshd.username,
                         password=sshd.password, host_key=sshd.host_key_line)
    call_command("check_connections", "Acme/local", "Ops/EU/box")
    out = capsys.readouterr().out
    assert "ok     Acme/local: Connected to SQLite" in out
    assert "ok     Ops/EU/box: Logged in to" in out

    factories.connection("folder", name="gone", folder="/nonexistent/courier")
    with pytest.raises(CommandError) as failed:
        call_command("check_connections")
    assert failed.value.returncode == 1
    assert "1 of 3 connection(s) failed" in str(failed.value)
    assert "FAILED Acme/gone: The base folder /nonexistent/courier" in capsys.readouterr().out

    with pytest.raises(CommandError) as unknown:
        call_command("check_connections", "Acme/nope")
    assert unknown.value.returncode == 2
    assert str(unknown.value) == "No connection “Acme/nope”."


def test_admin_action_tests_and_the_page_shows_the_pinned_fingerprint(client, superuser, sshd):
    conn = factories.sftp_connection(sshd)
    client.force_login(superuser)
    response = client.post(
        "/admin/connections/connection/", {"action": "test_connections", "_selected_action": [conn.pk]}, follow=True
    )
    assert f"Acme/sftp: Connected to {sshd.host}:{sshd.port} as {sshd.username}" in response.content.decode()
    page = client.get(f"/admin/connections/connection/{conn.pk}/change/").content.decode()
    assert f"ssh-ed25519 {sshd.host_key_fingerprint_sha256}" in page
    assert "Last test" in page
