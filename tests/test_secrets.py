"""Secrets are ciphertext at rest, decrypt only with a configured key, and are never rendered back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db
from django.test import override_settings
from django.urls import reverse

from connections.models import Connection
from connections.secrets import SecretError, stored_token
from tests import factories

pytestmark = pytest.mark.django_db
CANARY = "Canary-Pw-7f3a9c"


def raw_column(conn: Connection, column: str) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM connections_connection WHERE id = %s", [conn.pk])
        return cursor.fetchone()[0]


def test_the_database_holds_only_ciphertext():
    conn = factories.connection("sftp", host="h", username="u", password=CANARY, private_key="KEY-" + CANARY)
    assert CANARY not in raw_column(conn, "password")
    assert CANARY not in raw_column(conn, "private_key")
    assert raw_column(conn, "password").startswith("gAAAA")
    assert Connection.objects.get(pk=conn.pk).password == CANARY


def test_saving_again_does_not_re_encrypt_or_double_encrypt():
    conn = factories.connection("sftp", host="h", username="u", password=CANARY)
    token = raw_column(conn, "password")
    loaded = Connection.objects.get(pk=conn.pk)
    loaded.host = "h2"
    loaded.save()
    assert raw_column(conn, "password") == token
    assert Connection.objects.get(pk=conn.pk).password == CANARY


def test_a_wrong_key_gives_a_clear_error_naming_the_connection():
    conn = factories.connection("sftp", name="drop", host="h", username="u", password=CANARY)
    with override_settings(COURIER_SECRET_KEYS=[Fernet.generate_key().decode()]):
        loaded = Connection.objects.get(pk=conn.pk)
        with pytest.raises(SecretError) as caught:
            loaded.password  # noqa: B018 - reading the attribute decrypts
    message = str(caught.value)
    assert "password of connection “Acme/drop” cannot be decrypted" in message
    assert CANARY not in message and stored_token(loaded, "password") not in message


def test_rotation_keeps_old_secrets_readable():
    old_key = os.environ["COURIER_SECRET_KEYS"]
    conn = factories.connection("sftp", host="h", username="u", password=CANARY)
    new_key = Fernet.generate_key().decode()
    with override_settings(COURIER_SECRET_KEYS=[new_key, old_key]):
        assert Connection.objects.get(pk=conn.pk).password == CANARY


def test_settings_refuse_to_start_without_secret_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COURIER_SECRET_KEYS", "DJANGO_SETTINGS_MODULE")}
    env.update(SECRET_KEY="x", COURIER_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="etlsite.settings",
               COURIER_ENV_FILE=str(tmp_path / "no.env"))
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)), check=False)
    assert result.returncode != 0
    assert "COURIER_SECRET_KEYS is not set" in result.stderr


def test_admin_never_renders_a_secret_back(client, superuser):
    conn = factories.connection("sftp", host="h", username="u", password=CANARY, private_key="KEY-" + CANARY,
                                key_passphrase="PP-" + CANARY)
    client.force_login(superuser)
    page = client.get(f"/admin/connections/connection/{conn.pk}/change/").content.decode()
    assert CANARY not in page
    assert stored_token(conn, "password") not in page
    assert 'placeholder="unchanged"' in page


def test_admin_blank_keeps_and_new_value_replaces(client, superuser):
    conn = factories.connection("ftp", host="h", username="u", password=CANARY)
    client.force_login(superuser)
    form = {"organization": conn.organization_id, "name": conn.name, "kind": "ftp", "description": "",
            "host": "h", "port": "", "folder": "/", "username": "u2", "password": ""}
    response = client.post(f"/admin/connections/connection/{conn.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    conn.refresh_from_db()
    assert (conn.username, conn.password) == ("u2", CANARY)
    client.post(f"/admin/connections/connection/{conn.pk}/change/", {**form, "password": "new-one"})
    conn.refresh_from_db()
    assert conn.password == "new-one"


def test_connections_are_superuser_only(client, staff_runner):
    conn = factories.connection("ftp", host="h", username="u", password=CANARY)
    client.force_login(staff_runner)
    assert client.get("/admin/connections/connection/").status_code == 403
    assert client.get(f"/admin/connections/connection/{conn.pk}/change/").status_code == 403
    assert client.get("/admin/connections/gpgkey/").status_code == 403


def test_sensitive_parameter_is_encrypted_and_write_only(client, superuser):
    project = factories.project()
    param = project.parameters.create(key="@pw")
    param.set_value(CANARY, sensitive=True)
    param.save()
    assert CANARY not in raw_param(param.pk)
    client.force_login(superuser)
    page = client.get(reverse("courier:project_edit", args=[project.pk])).content.decode()
    assert 'name="param-0-key" value="@pw"' in page and CANARY not in page


def raw_param(pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT value, secret_value FROM projects_projectparameter WHERE id = %s", [pk])
        return " ".join(cursor.fetchone())


def test_rotate_secrets_re_encrypts_under_the_first_key(capsys):
    from django.core.management import call_command

    old_key = os.environ["COURIER_SECRET_KEYS"]
    conn = factories.connection("sftp", host="h", username="u", password=CANARY)
    project = factories.project()
    param = project.parameters.create(key="@pw")
    param.set_value("param-" + CANARY, sensitive=True)
    param.save()
    new_key = Fernet.generate_key().decode()
    with override_settings(COURIER_SECRET_KEYS=[new_key, old_key]):
        call_command("rotate_secrets")
    assert "Re-encrypted 2 secret(s)" in capsys.readouterr().out
    # Only the new key is needed from now on.
    with override_settings(COURIER_SECRET_KEYS=[new_key]):
        assert Connection.objects.get(pk=conn.pk).password == CANARY
        assert project.parameters.get().clear_value == "param-" + CANARY
