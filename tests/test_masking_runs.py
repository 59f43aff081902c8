"""Masking where people read it (SPEC §7, §8.2): a run log against encoded secrets, file names on the pages, mails.

A processing script prints its whole environment base64-encoded (standard
and URL-safe, and a part of it at each of the three byte alignments), a
sensitive parameter hex-encoded, and Courier's own keys as a script that read
`.env` would have them. The run log, as the run-log page serves it, must
hold none of them: neither in clear nor in any base64 or hex token of it
once decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.contrib.admin.models import LogEntry
from django.test import Client, override_settings
from django.urls import reverse

from connections.masking import MASK
from runs.models import RunFile, RunStatus
from runs.preview import preview
from tasks.models import CodeLocation, CodeRole, Notification, TaskParameter
from tests import factories
from tests.processing_support import run_task

pytestmark = pytest.mark.django_db

SCRIPT = """\
import base64, json, os
env = json.dumps(dict(os.environ))
print(base64.b64encode(env.encode()).decode())
print(base64.urlsafe_b64encode(env.encode()).decode())
wanted = {{k: v for k, v in os.environ.items() if k in ("COURIER_CONNECTION", "apikey")}}
for pad in range(3):  # every byte alignment the secrets can have in a longer blob
    blob = ("#" * pad + json.dumps(wanted)).encode()
    print("aligned", pad, base64.b64encode(blob).decode(), base64.urlsafe_b64encode(blob).decode())
print("hex", os.environ["apikey"].encode().hex(), os.environ["apikey"].encode().hex().upper())
own = {own!r}  # Courier's own keys, as a script that read .env would have them
print(own)
print("own", base64.b64encode(own.encode()).decode(), own.encode().hex())
"""

B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{6,}=*")
HEX_TOKEN = re.compile(r"[0-9a-fA-F]{6,}")


def canary(label: str) -> str:
    return f"Canary-{label}-{secrets.token_hex(6)}"


def decoded_views(text: str) -> list[bytes]:
    """The text, and every base64 or hex token in it decoded from every starting offset."""
    views = [text.encode()]
    for token in B64_TOKEN.findall(text):
        body = token.rstrip("=").translate(str.maketrans("-_", "+/"))
        for start in range(4):
            piece = body[start:]
            piece = piece[: len(piece) - (len(piece) % 4 == 1)]
            views.append(base64.b64decode(piece + "=" * (-len(piece) % 4)))
    for token in HEX_TOKEN.findall(text):
        for start in range(2):
            piece = token[start:]
            views.append(binascii.unhexlify(piece[: len(piece) // 2 * 2]))
    return views


def leaked(text: str, values: dict[str, str]) -> list[str]:
    views = decoded_views(text)
    return sorted(label for label, value in values.items() if any(value.encode() in view for view in views))


def page_log(client: Client, run) -> list[str]:
    response = client.get(reverse("courier:run_log", args=[run.pk]))
    assert response.status_code == 200
    return [line["message"] for line in response.json()["lines"]]


@pytest.fixture
def own_keys(settings, monkeypatch) -> dict[str, str]:
    """Courier's own secrets: the real keys, and passwords for its database, broker and mail server."""
    passwords = {name: canary(name) for name in ("database", "redis", "mail")}
    monkeypatch.setitem(django_settings.DATABASES["default"], "PASSWORD", passwords["database"])
    settings.REDIS_URL = f"redis://:{passwords['redis']}@broker:6379/0"
    settings.EMAIL_HOST_PASSWORD = passwords["mail"]
    keys = {"SECRET_KEY": settings.SECRET_KEY, **{f"fernet-{i}": k for i, k in enumerate(settings.COURIER_SECRET_KEYS)}}
    return {**keys, **passwords}


def env_file(own: dict[str, str]) -> str:
    return (f"SECRET_KEY={own['SECRET_KEY']} COURIER_SECRET_KEYS={django_settings.COURIER_SECRET_KEYS[0]} "
            f"DATABASE_URL=postgres://courier:{own['database']}@db/courier REDIS_URL=redis://:{own['redis']}@broker:6379/0 "
            f"EMAIL_URL=smtp://courier:{own['mail']}@mail.example.test")


def test_a_script_printing_encoded_secrets_leaves_none_in_the_run_log(sqlite_odbc, offline_pip, own_keys, staff_viewer):
    values = {"odbc password": canary("odbc"), "sensitive parameter": canary("param"), **own_keys}
    conn = factories.connection("database", name="sqlite-db", dialect="sqlite", odbc=f"{sqlite_odbc.odbc}Pwd={values['odbc password']};")
    task = factories.query_task(factories.project(), conn, "select 1 as one")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=SCRIPT.format(own=env_file(own_keys)))
    secret = TaskParameter(task=task, key="apikey")
    secret.set_value(values["sensitive parameter"], sensitive=True)
    secret.save()

    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    client = Client()
    client.force_login(staff_viewer)
    lines = page_log(client, run)

    printed = [line for line in lines if line.startswith(("aligned", "hex", "own", "SECRET_KEY"))]
    assert len(printed) == 6, lines  # the script ran and its lines reached the log
    assert {name: leaked(line, values) for name, line in enumerate(lines) if leaked(line, values)} == {}
    # Masked, not dropped: each aligned blob hides both secrets, in both alphabets.
    for line in printed[:3]:
        assert line.count(MASK) >= 4, line
    assert printed[3].split()[1:] == [MASK, MASK]


def test_a_sensitive_value_in_a_file_name_is_masked_on_the_pages_and_in_mails(sqlite_odbc, tmp_path, staff_runner, superuser,
                                                                             mailoutbox):
    value = canary("name")
    conn = factories.connection("database", name="sqlite-db", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), conn, "select 1 as one", output_name="orders_@key")
    secret = TaskParameter(task=task, key="@key")
    secret.set_value(value, sensitive=True)
    secret.save()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    factories.destination(task, factories.connection("folder", name="outbox", folder=str(outbox)))
    Notification.objects.create(task=task, event="success", recipients="ops@example.test")

    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    # The file itself keeps its real name: only what people read is masked.
    assert [p.name for p in outbox.iterdir()] == [f"orders_{value}.csv"]
    record = RunFile.objects.get(run=run)
    assert record.name == f"orders_{value}.csv"

    client = Client()
    client.force_login(staff_runner)
    details = client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()
    assert f"orders_{MASK}.csv" in details and value not in details
    resent = client.post(reverse("courier:file_resend", args=[record.pk]), follow=True).content.decode()
    assert f"Resent orders_{MASK}.csv" in resent and value not in resent
    assert value not in LogEntry.objects.get(object_id=str(task.pk), change_message__startswith="Resent").change_message

    client.force_login(superuser)
    admin_page = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert f"orders_{MASK}.csv" in admin_page and value not in admin_page

    mail = mailoutbox[0]
    assert f"orders_{MASK}.csv" in mail.body and f"orders_{MASK}.csv" in mail.alternatives[0][0]
    assert value not in mail.body + mail.alternatives[0][0] + mail.subject


def test_a_secret_that_cannot_be_decrypted_fails_the_run_clearly_and_shows_on_the_preview(sqlite_odbc, staff_runner):
    conn = factories.connection("database", name="sqlite-db", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), conn, "select 1 as one", output_name="orders_@key")
    secret = TaskParameter(task=task, key="@key")
    secret.set_value(canary("lost"), sensitive=True)
    secret.save()

    with override_settings(COURIER_SECRET_KEYS=[Fernet.generate_key().decode()]):
        run = run_task(task)
        assert run.status == RunStatus.FAILED and run.permanent
        assert run.error_stage == "parameters"
        assert "sensitive value of task parameter" in run.error and "cannot be decrypted" in run.error
        assert any("cannot be decrypted" in error for error in preview(task).errors)
        client = Client()
        client.force_login(staff_runner)
        page = client.get(reverse("courier:task_detail", args=[task.pk]))
        assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()
