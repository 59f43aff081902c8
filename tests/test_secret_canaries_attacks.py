"""The attacks of issue 13, tried with canaries in every secret they aimed at: none reaches anything a person can read.

- a processing script prints its whole environment base64-encoded (both
  alphabets) and hex-encoded, and tries to read Courier's `.env`, database
  and keys;
- a query on a SQLite connection attaches Courier's own database to read the
  session keys;
- a web connection's token is aimed at a second local server, directly and
  through a redirect, and that server records every header it receives.

Each surface is searched for the plain canaries and for every base64 and hex
token decoded again.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection as db
from django.test import Client

from runs.models import RunStatus
from tasks.models import CodeLocation, Notification, Task
from tests import factories
from tests.delivery_support import run_task
from tests.url_support import recorders  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)

ENCODED_ENVIRONMENT = """\
import base64, binascii, json, os
everything = json.dumps(dict(os.environ)).encode()
print(base64.b64encode(everything).decode())
print(base64.urlsafe_b64encode(everything).decode())
print(binascii.hexlify(everything).decode())
for path in (SETTINGS_FILES):
    try:
        print(base64.b64encode(open(path, "rb").read()).decode())
    except OSError as exc:
        print("refused", type(exc).__name__)
"""
BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
HEX_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")


def decoded_again(text: str) -> str:
    """The text plus every base64 or hex token in it decoded, so an encoded canary shows up in plain."""
    found = [text]
    for token in BASE64_TOKEN.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                found.append(decode(token + "=" * (-len(token) % 4)).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                pass
    for token in HEX_TOKEN.findall(text):
        found.append(bytes.fromhex(token).decode("utf-8", "replace"))
    return "\n".join(found)


def leaks(canaries: dict[str, str], surfaces: dict[str, str]) -> dict[str, list[str]]:
    found = {}
    for name, text in surfaces.items():
        plain = decoded_again(text or "")
        if hit := sorted(label for label, value in canaries.items() if value in plain):
            found[name] = hit
    return found


def surfaces_of(run, superuser) -> dict[str, str]:
    client = Client()
    client.force_login(superuser)
    seen = {
        "run error": run.error,
        "run log": "\n".join(run.log_lines.values_list("message", flat=True)),
        "task details": client.get(f"/tasks/{run.task_id}/").content.decode(),
        "run admin": client.get(f"/admin/runs/run/{run.pk}/change/").content.decode(),
    }
    for folder in (settings.COURIER_STORAGE_DIR, settings.COURIER_WORK_DIR):
        for path in Path(folder).rglob("*") if Path(folder).exists() else []:
            if path.is_file():
                seen[f"file {path}"] = path.read_bytes().decode("utf-8", "replace")
    return seen


def canary(label: str) -> str:
    return f"Canary{label}{secrets.token_hex(6)}"


def test_a_script_printing_its_environment_encoded_leaks_nothing(sqlite_odbc, offline_pip, superuser, monkeypatch):
    values = {"source-password": canary("Source"), "parameter": canary("Param"),
              "email-url-password": canary("Mail"), "database-url-password": canary("Db")}
    monkeypatch.setenv("EMAIL_URL", f"smtp://courier:{values['email-url-password']}@mail.example.test")
    monkeypatch.setenv("DATABASE_URL", f"postgres://courier:{values['database-url-password']}@db/courier")
    keys = {"django-key": settings.SECRET_KEY, **{f"fernet-{i}": key for i, key in enumerate(settings.COURIER_SECRET_KEYS)}}
    source = factories.connection("database", dialect="sqlite", odbc=f"{sqlite_odbc.odbc}Pwd={values['source-password']};")
    task = factories.query_task(factories.project("Attacks"), source, "select 1 as one", name="encoded")
    param = task.parameters.model(task=task, key="{secret}")
    param.set_value(values["parameter"], sensitive=True)
    param.save()
    targets = [str(Path(settings.BASE_DIR) / ".env"), db.settings_dict["NAME"]]
    script = ENCODED_ENVIRONMENT.replace("SETTINGS_FILES", repr(tuple(targets)))
    CodeLocation.objects.create(task=task, role="processing", location="inline", text=script)

    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    log = "\n".join(run.log_lines.values_list("message", flat=True))
    assert log.count("refused") == len(targets)  # neither file could be opened in the sandbox
    assert len(BASE64_TOKEN.findall(log)) >= 2  # the script did print its environment, masked where it held a secret
    assert leaks({**values, **keys}, surfaces_of(run, superuser)) == {}


def test_a_query_attaching_courier_s_database_leaks_no_session_key(sqlite_odbc, superuser):
    session = SessionStore()
    session["who"] = "superuser"
    session.create()
    key = session.session_key
    attach = f"ATTACH DATABASE '{db.settings_dict['NAME']}' AS c;\nselect session_key from c.django_session"
    for read_only in (False, True):
        source = factories.connection("database", name=f"lite-{read_only}", dialect="sqlite", odbc=sqlite_odbc.odbc,
                                      read_only=read_only)
        task = factories.query_task(factories.project(f"Attach {read_only}"), source, attach, name="attach")
        run = run_task(task)
        assert run.status == RunStatus.FAILED and "ATTACH" in run.error, run.error
        assert not run.files.exists()
        assert leaks({"session-key": key}, surfaces_of(run, superuser)) == {}


def test_a_web_token_never_reaches_a_second_server(recorders, settings, superuser, mailoutbox):
    settings.COURIER_ALLOW_LOCAL_URLS = True  # both servers are on loopback
    home, elsewhere = recorders(), recorders()
    token = canary("WebToken")
    home.redirect("/scripts/moved.py", f"{elsewhere.url}/scripts/moved.py")
    elsewhere.answer("/scripts/moved.py", "print('fetched elsewhere')")
    elsewhere.answer("/direct.py", "print('fetched elsewhere')")
    web = factories.connection("web", name="web", url=f"{home.url}/scripts/", header="X-Api-Key", token=token)
    project = factories.project("Tokens")
    made = []
    for name, url in (("redirected", f"{home.url}/scripts/moved.py"), ("direct", f"{elsewhere.url}/direct.py")):
        task = Task.objects.create(project=project, name=name, source_kind="python")
        # Written past the form, as a changed database or an old row would hold it: the fetch must check again.
        CodeLocation.objects.create(task=task, role="processing", location="web", connection=web, url=url)
        Notification.objects.create(task=task, event="failure", recipients="ops@example.test")
        made.append(run_task(task))

    assert elsewhere.header_values("X-Api-Key") == []
    redirected, direct = made
    # The redirect is followed without the token (the script is public there); the direct URL is refused before any request.
    assert redirected.status == RunStatus.SUCCEEDED, redirected.error
    assert [path for path, _headers in elsewhere.received] == ["/scripts/moved.py"]
    assert direct.status == RunStatus.FAILED and "is not under" in direct.error
    surfaces = {f"{run.task.name} {name}": text for run in made for name, text in surfaces_of(run, superuser).items()}
    surfaces.update({f"mail {i}": m.message().as_string() for i, m in enumerate(mailoutbox)})
    assert leaks({"web-token": token}, surfaces) == {}
