"""Secrets never leak (SPEC §7, §10): every secret is a unique canary, then everything that can show text is read.

Every secret field holds its own canary: connection passwords (a MariaDB
ODBC string that logs in, one that is refused, SFTP, SSH, FTP and SMB
passwords against the real servers), a private key and its passphrase,
GitLab and web tokens, and sensitive project and task parameters. Runs are
made to fail in ways whose messages could carry a secret; then every page
(as superuser and as staff), the previews, the commands, the run logs,
the failure mails, Python's own log records, the stored files and every
text column of the database are searched. A processing script records its
environment: Courier's own secrets are absent; the source connection's
credentials are there on purpose (COURIER_CONNECTION, SPEC §3.7), and so
are the task's parameters, but no other connection's canary.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pyodbc
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.test import Client
from django.urls import reverse

from connections.models import Connection
from connections.secrets import SecretField, decrypt
from runs.models import Run, RunFile, RunStatus
from tasks.models import CodeLocation, Notification, Task, TaskParameter
from tests import factories
from tests.delivery_support import run_task
from tests.security_support import admin_models, courier_endpoints, model_for
from tests.servers_odbc import MARIADB_ADMIN, _mariadb_accounts

pytestmark = pytest.mark.django_db

SCRIPT = """\
import json, os, socket, sys
conn = json.loads(os.environ["COURIER_CONNECTION"])
print("source connection string:", conn["odbc"])
print("sensitive parameter:", os.environ["pw"], file=sys.stderr)
# The sandbox lets the script write only into its run folder: its environment goes to the test over the network.
with socket.create_connection(("127.0.0.1", int(os.environ["dump_port"]))) as dump:
    dump.sendall(json.dumps(dict(os.environ)).encode())
"""


class Canaries:
    """Unique, recognisable values; `label` says which secret a leaked value was."""

    def __init__(self) -> None:
        self.by_value: dict[str, str] = {}

    def new(self, label: str) -> str:
        value = f"Canary{label.title().replace('-', '')}{secrets.token_hex(5)}"
        self.by_value[value] = label
        return value

    def found_in(self, text: str, allowed: set[str] = frozenset()) -> list[str]:
        return sorted(label for value, label in self.by_value.items() if value in text and label not in allowed)


@pytest.fixture
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture
def canary_login(mariadb_odbc, canaries) -> Iterator[tuple[str, str]]:
    """A MariaDB login whose password is a canary, on the mariadb_odbc database, with a table `things`."""
    user, password = f"courier_c{secrets.token_hex(4)}", canaries.new("mariadb-password")
    with closing(pyodbc.connect(MARIADB_ADMIN, autocommit=True, timeout=5)) as admin:
        for account in _mariadb_accounts(user):
            admin.execute(f"CREATE USER {account} IDENTIFIED BY '{password}'")
            admin.execute(f"GRANT ALL PRIVILEGES ON `{mariadb_odbc.name}`.* TO {account}")
        admin.execute(f"CREATE TABLE IF NOT EXISTS `{mariadb_odbc.name}`.things (id INT, name VARCHAR(20))")
        admin.execute(f"DELETE FROM `{mariadb_odbc.name}`.things")
        admin.execute(f"INSERT INTO `{mariadb_odbc.name}`.things VALUES (1, 'Ann')")
    yield user, password
    with closing(pyodbc.connect(MARIADB_ADMIN, autocommit=True, timeout=5)) as admin:
        for account in _mariadb_accounts(user):
            admin.execute(f"DROP USER IF EXISTS {account}")


@pytest.fixture
def mail(smtp_server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.host, smtp_server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    return smtp_server


@pytest.fixture
def scripts(settings, wheelhouse, session_venvs):
    settings.COURIER_PIP_OPTIONS = ["--no-index", "--find-links", str(wheelhouse)]
    settings.COURIER_VENV_DIR = session_venvs
    # The GitLab and web tasks fetch from the local HTTP server, so their tokens really travel.
    settings.COURIER_ALLOW_LOCAL_URLS = True


# --------------------------------------------------------------------------
# The world: one canary per secret, tasks that fail in telling ways
# --------------------------------------------------------------------------


def odbc(db, user: str, password: str) -> str:
    return f"Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;Database={db.name};Uid={user};Pwd={password};"


def connections(c: Canaries, mariadb_odbc, login, sshd, ftp_server, smb_server, http_server) -> dict[str, Connection]:
    user, password = login
    make = factories.connection
    bad_key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{c.new('private-key')}\n-----END OPENSSH PRIVATE KEY-----"
    return {
        "warehouse": make("database", name="warehouse", dialect="mysql", odbc=odbc(mariadb_odbc, user, password)),
        "refused-db": make("database", name="refused-db", dialect="mysql", odbc=odbc(mariadb_odbc, user, c.new("wrong-db-password"))),
        "drop": make("sftp", name="drop", host=sshd.host, port=sshd.port, username=sshd.username, folder=str(sshd.root),
                     host_key=sshd.host_key_line, password=c.new("sftp-password")),
        "keyed": make("sftp", name="keyed", host=sshd.host, port=sshd.port, username=sshd.username, folder=str(sshd.root),
                      host_key=sshd.host_key_line, private_key=bad_key, key_passphrase=c.new("key-passphrase")),
        "shell": make("ssh", name="shell", host=sshd.host, port=sshd.port, username=sshd.username,
                      host_key=sshd.host_key_line, password=c.new("ssh-password")),
        "ftpbox": make("ftp", name="ftpbox", host=ftp_server.host, port=ftp_server.port, username=ftp_server.username,
                       folder="/", password=c.new("ftp-password")),
        "share": make("smb", name="share", host=smb_server.host, port=smb_server.port, share=smb_server.share,
                      username=smb_server.username, password=c.new("smb-password")),
        "lab": make("gitlab", name="lab", url=http_server.url, token=c.new("gitlab-token")),
        "web": make("web", name="web", url=http_server.url, header="X-Api-Key", token=c.new("web-token")),
    }


def sensitive(owner, key: str, value: str):
    param = owner.parameters.model(key=key, **{owner._meta.model_name: owner})
    param.set_value(value, sensitive=True)
    param.save()


def tasks(c: Canaries, conns: dict[str, Connection], dump_port: int, http_server) -> dict[str, Task]:
    project = factories.project("Canaries", cron="0 6 * * *")
    sensitive(project, "@projpw", c.new("project-parameter"))
    made = {
        "extract": factories.query_task(project, conns["warehouse"], "SET @pw = '';\nSELECT id, name FROM things WHERE @pw <> ''",
                                        name="extract"),
        "refused": factories.query_task(project, conns["refused-db"], "SELECT 1 AS one", name="refused"),
        "command": Task.objects.create(project=project, name="command", source_kind="ssh", source_connection=conns["shell"],
                                       source_stdout_as_file=True, output_type="csv"),
        "gitlab": Task.objects.create(project=project, name="gitlab", source_kind="python"),
        "web": Task.objects.create(project=project, name="web", source_kind="python"),
    }
    sensitive(made["extract"], "@pw", f"'{c.new('task-parameter')}'")
    TaskParameter.objects.create(task=made["extract"], key="dump_port", value=str(dump_port))
    CodeLocation.objects.create(task=made["extract"], role="processing", location="inline", text=SCRIPT)
    for name in ("drop", "keyed", "ftpbox", "share"):
        factories.destination(made["extract"], conns[name])
    CodeLocation.objects.create(task=made["command"], role="source", location="inline", text="echo a,b")
    CodeLocation.objects.create(task=made["gitlab"], role="processing", location="gitlab", connection=conns["lab"],
                                url=f"{http_server.url}/group/project", path="missing.py")
    CodeLocation.objects.create(task=made["web"], role="processing", location="web", connection=conns["web"],
                                url=f"{http_server.url}/missing.py")
    for task in made.values():
        Notification.objects.create(task=task, event="failure", recipients="ops@example.test")
    return made


# --------------------------------------------------------------------------
# Reading every surface
# --------------------------------------------------------------------------


def command(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}")
    return out.getvalue() + err.getvalue()


def commands(made: dict[str, Task]) -> dict[str, str]:
    return {
        "preview_task extract": command("preview_task", str(made["extract"])),
        "preview_task refused --sql": command("preview_task", str(made["refused"]), "--sql"),
        "export_config": command("export_config"),
        "check_connections": command("check_connections"),
        "runs --json": command("runs", "--json"),
        "run_task refused --wait": command("run_task", str(made["refused"]), "--wait"),
    }


def courier_pages(client: Client) -> dict[str, str]:
    pages = {}
    for endpoint in courier_endpoints():
        if endpoint.action:
            continue  # actions are POSTs; their outcome shows on the pages read here
        targets = [{}]
        if endpoint.params:
            targets = [{p: obj.pk for p in endpoint.params} for obj in model_for(endpoint, endpoint.params[0]).objects.all()]
        for kwargs in targets:
            url = reverse(f"courier:{endpoint.name}", kwargs=kwargs)
            response = client.get(url)
            if response.status_code == 200 and not response.streaming:
                pages[url] = response.content.decode()
    return pages


def admin_pages(client: Client) -> dict[str, str]:
    pages = {}
    for label in admin_models():
        app, model_name = label.split(".")
        base = f"/admin/{app}/{model_name}/"
        urls = [base, base + "add/"]
        for pk in apps.get_model(label).objects.values_list("pk", flat=True)[:50]:
            urls += [f"{base}{pk}/change/", f"{base}{pk}/history/"]
        for url in urls:
            response = client.get(url)
            if response.status_code == 200:
                pages[url] = response.content.decode()
    return pages


def admin_test_action(client: Client) -> str:
    """The admin's “Test” action on every connection, and the page that reports it (error messages included)."""
    ids = list(Connection.objects.values_list("pk", flat=True))
    response = client.post("/admin/connections/connection/", {"action": "test_connections", "_selected_action": ids}, follow=True)
    cookies = "".join(morsel.value for morsel in client.cookies.values())
    return response.content.decode() + cookies


def database_text() -> dict[str, str]:
    """Every value of every table, raw, as the database holds it."""
    found = {}
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            found[f"table {table}"] = "\n".join(repr(row) for row in cursor.fetchall())
    return found


def files_below(*folders: Path) -> dict[str, str]:
    found = {}
    for folder in folders:
        for path in Path(folder).rglob("*") if Path(folder).exists() else []:
            if path.is_file() and "venvs" not in path.parts:
                found[f"file {path}"] = path.read_bytes().decode("utf-8", "replace")
    return found


# --------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------


@pytest.fixture
def quick_ftp_refusals(monkeypatch):
    """pyftpdlib waits 3 s after a refused login; the refusal is what is tested here, not the wait."""
    from tests.servers_inprocess import _pyftpdlib

    monkeypatch.setattr(_pyftpdlib().handlers.FTPHandler, "auth_failed_timeout", 0)


def exercise(made: dict[str, Task], superuser, staff_runner, mail, caplog) -> tuple[dict[str, Run], dict[str, str]]:
    """Run every task, use every page, command and admin action; return the runs and every text seen (name → text)."""
    runs = {name: run_task(task) for name, task in made.items()}
    surfaces = {f"run {name} error": run.error for name, run in runs.items()}
    surfaces.update(commands(made))
    for who in (superuser, staff_runner):
        client = Client()
        client.force_login(who)
        surfaces.update({f"{who} {url}": text for url, text in {**courier_pages(client), **admin_pages(client)}.items()})
        if who.is_superuser:
            surfaces["admin test action"] = admin_test_action(client)
    surfaces.update({f"mail {i}": m.as_string() for i, m in enumerate(mail.messages)})
    surfaces["python log records"] = caplog.text
    surfaces.update(database_text())
    surfaces.update(files_below(settings.COURIER_STORAGE_DIR, settings.COURIER_WORK_DIR))
    return runs, surfaces


def test_secrets_never_leak(canaries, canary_login, mariadb_odbc, sshd, ftp_server, smb_server, http_server, mail, scripts,
                            quick_ftp_refusals, tcp_listener, superuser, staff_runner, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    # Courier's own secrets, as a worker's environment may hold them, under their names and under another.
    monkeypatch.setenv("EMAIL_URL", f"smtp://courier:{canaries.new('email-url-password')}@mail.example.test")
    monkeypatch.setenv("DATABASE_URL", f"postgres://courier:{canaries.new('database-url-password')}@db/courier")
    monkeypatch.setenv("COPY_OF_THE_DJANGO_KEY", settings.SECRET_KEY)
    conns = connections(canaries, mariadb_odbc, canary_login, sshd, ftp_server, smb_server, http_server)
    dump_port, dumped = tcp_listener
    made = tasks(canaries, conns, dump_port, http_server)

    runs, surfaces = exercise(made, superuser, staff_runner, mail, caplog)

    check_the_runs_failed_as_planned(runs, mail)
    check_no_canary_anywhere(canaries, surfaces)
    check_the_script_environment(canaries, runs["extract"], json.loads(dumped[0]))
    check_only_ciphertext_is_stored()


def check_the_runs_failed_as_planned(runs: dict[str, Run], mail) -> None:
    """Without this the test could pass on runs that never reached the secrets."""
    assert {name: run.status for name, run in runs.items()} == dict.fromkeys(runs, RunStatus.FAILED)
    assert runs["extract"].error_stage == "delivery" and "4 of 4 deliveries failed" in runs["extract"].error
    assert runs["refused"].error_stage == "source" and "Access denied" in runs["refused"].error
    assert "was refused" in runs["command"].error
    assert runs["gitlab"].error_stage == runs["web"].error_stage == "processing"
    assert RunFile.objects.filter(run=runs["extract"]).count() == 1  # the query and the script did run
    assert len(mail.messages) >= len(runs)  # a failure mail per run


def check_no_canary_anywhere(canaries: Canaries, surfaces: dict[str, str]) -> None:
    assert len(surfaces) > 100
    leaks = {name: found for name, text in surfaces.items() if (found := canaries.found_in(text or ""))}
    assert not leaks, json.dumps(leaks, indent=1)[:5000]


def check_the_script_environment(canaries: Canaries, run: Run, environment: dict[str, str]) -> None:
    text = json.dumps(environment)
    # On purpose (SPEC §3.7): the source connection's login and the task's own parameters.
    assert "mariadb-password" in canaries.found_in(environment["COURIER_CONNECTION"])
    assert canaries.found_in(environment["pw"]) == ["task-parameter"]
    assert canaries.found_in(environment["projpw"]) == ["project-parameter"]
    assert canaries.found_in(text, allowed={"mariadb-password", "task-parameter", "project-parameter"}) == []
    # Courier's own secrets: neither the names nor the values.
    for name in ("SECRET_KEY", "COURIER_SECRET_KEYS", "EMAIL_URL", "DATABASE_URL", "COPY_OF_THE_DJANGO_KEY"):
        assert name not in environment
    for value in (settings.SECRET_KEY, *settings.COURIER_SECRET_KEYS):
        assert value not in text
    # What the script printed reached the log masked.
    log = "\n".join(run.log_lines.values_list("message", flat=True))
    assert "source connection string: ********" in log and "sensitive parameter: ********" in log


def check_only_ciphertext_is_stored() -> None:
    checked = 0
    for model in apps.get_models():
        for field in (f for f in model._meta.fields if isinstance(f, SecretField)):
            with db.cursor() as cursor:
                cursor.execute(f"SELECT {field.column} FROM {model._meta.db_table} WHERE {field.column} <> ''")
                for (token,) in cursor.fetchall():
                    assert token.startswith("gAAAAA"), (model, field.name)
                    decrypt(token)  # a real token under the configured key
                    checked += 1
    assert checked >= 12


def test_a_connection_form_with_errors_does_not_show_a_typed_secret_back(client, superuser, canaries):
    conn = factories.connection("database", name="dw", odbc="Driver=X;Pwd=old;")
    client.force_login(superuser)
    typed = {name: canaries.new(name) for name in ("odbc", "password", "private_key", "key_passphrase", "token")}
    form = {"organization": conn.organization_id, "name": "", "kind": "database", "dialect": "mysql",
            "query_timeout": "not a number", "login_timeout": "30", **typed}
    response = client.post(f"/admin/connections/connection/{conn.pk}/change/", form)
    assert response.status_code == 200 and "errornote" in response.content.decode()
    assert canaries.found_in(response.content.decode()) == []
    conn.refresh_from_db()
    assert conn.odbc == "Driver=X;Pwd=old;"  # nothing stored from the refused form
