"""Admin forms used the way a person uses them: GET the page, POST what is typed, follow where it leads.

Connections (SPEC §7): the add page says “Choose the kind and save; its own
settings appear then”. For every kind, a superuser does exactly that, types
the kind's settings into the page that appears, saves, and lands on the
saved connection. Secrets are stored encrypted and decrypt to what was typed;
the page never shows them back.
"""

from __future__ import annotations

import io
import re

import paramiko
import pytest

from connections.models import Connection, GpgKey, Organization
from connections.secrets import decrypt, stored_token
from tests import factories

pytestmark = pytest.mark.django_db

ADD = "/admin/connections/connection/add/"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPK47dkfjbqTrXlyrjun+4+tTxe4nej2k2/7rdhfPuMI"


def _private_key() -> str:
    """An OpenSSH-readable private key, pasted into the page with the newline editors leave at the end."""
    out = io.StringIO()
    paramiko.RSAKey.generate(1024).write_private_key(out)
    return out.getvalue()


# What a person types for each kind: (text typed, what is stored). Check boxes are "on" when ticked.
TYPED = {
    "database": {
        "dialect": "postgresql",
        "odbc": "Driver={PostgreSQL Unicode};Server=db.acme.test;Database=dw;Uid=etl;Pwd=odbc-Pa55;",
        "query_timeout": "600", "login_timeout": "15", "read_only": "on",
    },
    "sftp": {
        "host": "sftp.acme.test", "port": "2222", "folder": "/incoming", "username": "etl",
        "password": "sftp-Pa55 word", "key_passphrase": "", "host_key": HOST_KEY,
    },
    "ftp": {"host": "ftp.acme.test", "port": "", "folder": "/out", "username": "legacy", "password": "ftp-Pa55", "tls": "on"},
    "smb": {
        "host": "fs.acme.test", "port": "", "share": "data", "folder": r"exports\daily", "domain": "ACME",
        "username": "svc-etl", "password": "smb-Pa55",
    },
    "ssh": {"host": "batch.acme.test", "port": "22", "username": "batch", "password": "", "private_key": "(generated)",
            "key_passphrase": "", "host_key": HOST_KEY},
    "gitlab": {"url": "https://gitlab.acme.test", "token": "glpat-Secret123", "verify_tls": "on"},
    "web": {"url": "https://raw.githubusercontent.com/acme/", "header": "Authorization", "token": "Bearer web-Secret123", "verify_tls": ""},
    "folder": {"folder": "/srv/courier/outbox"},
}
STORED = {
    "database": {"read_only": True, "query_timeout": 600, "login_timeout": 15},
    "sftp": {"port": 2222},
    "ftp": {"port": None, "tls": True},
    "smb": {"port": None},
    "ssh": {"port": 22},
    "gitlab": {"verify_tls": True},
    "web": {"verify_tls": False},
}
SECRETS = ("odbc", "password", "private_key", "key_passphrase", "token")


def _kinds_offered(page: str) -> list[str]:
    select = re.search(r'<select name="kind"[^>]*>(.*?)</select>', page, re.S).group(1)
    return [value for value in re.findall(r'<option value="([^"]*)"', select) if value]


def test_every_kind_offered_on_the_add_page_is_covered_here(client, superuser):
    client.force_login(superuser)
    page = client.get(ADD).content.decode()
    assert "Choose the kind and save; its own settings appear then." in page
    assert sorted(_kinds_offered(page)) == sorted(TYPED)


@pytest.mark.parametrize("kind", sorted(TYPED))
def test_a_superuser_adds_a_connection_of_each_kind_through_the_admin(client, superuser, kind):
    client.force_login(superuser)
    org = factories.organization("Acme")
    assert client.get(ADD).status_code == 200

    # Step 1: choose the kind and save, as the page says.
    general = {"organization": str(org.pk), "name": f"my {kind}", "kind": kind, "description": "Set up by hand"}
    step = client.post(ADD, general, follow=True)
    assert step.status_code == 200
    page = step.content.decode()
    assert "Please correct" not in page
    assert not Connection.objects.exists(), "choosing the kind only shows its settings; nothing is saved yet"
    typed = dict(TYPED[kind])
    if typed.get("private_key") == "(generated)":
        typed["private_key"] = _private_key()
    for field in typed:
        assert f'name="{field}"' in page, f"the {kind} page has no {field} input"
    assert f'value="my {kind}"' in page, "what was typed before choosing the kind is kept"
    settings_url = step.redirect_chain[-1][0] if step.redirect_chain else ADD

    # Step 2: type the kind's settings into the page that appeared, and save.
    form = {**general, **{k: v for k, v in typed.items() if v != ""}, "_continue": "Save and continue editing"}
    done = client.post(settings_url, form, follow=True)
    assert done.status_code == 200
    conn = Connection.objects.get(name=f"my {kind}")
    assert done.redirect_chain[-1][0].endswith(f"/admin/connections/connection/{conn.pk}/change/")
    landed = done.content.decode()
    assert "was added successfully" in landed

    assert (conn.organization, conn.kind, conn.description) == (org, kind, "Set up by hand")
    expected = {k: v for k, v in typed.items() if k not in SECRETS and v != "on" and v != ""}
    expected.update(STORED.get(kind, {}))
    for field, value in expected.items():
        assert getattr(conn, field) == value, field
    for field in SECRETS:
        clear = typed.get(field, "").strip() if field == "private_key" else typed.get(field, "")
        assert getattr(conn, field) == clear, field
        if clear:
            token = stored_token(conn, field)
            assert token != clear and clear not in token, f"{field} is stored in clear text"
            assert decrypt(token) == clear
            assert clear.splitlines()[0] not in landed, f"the page shows the {field} back"


def test_switching_the_kind_of_a_saved_connection_shows_the_new_kind_s_settings_first(client, superuser):
    client.force_login(superuser)
    conn = factories.connection("ftp", name="drop", host="ftp.acme.test", password="old-Pa55")
    change = f"/admin/connections/connection/{conn.pk}/change/"
    general = {"organization": str(conn.organization_id), "name": "drop", "kind": "sftp", "description": ""}

    step = client.post(change, {**general, "host": "ftp.acme.test"}, follow=True)
    page = step.content.decode()
    assert step.status_code == 200 and "Please correct" not in page
    assert 'name="host_key"' in page and 'name="tls"' not in page, "the SFTP settings are shown"
    assert Connection.objects.get(pk=conn.pk).kind == "ftp", "nothing is saved until the new settings are"

    done = client.post(step.redirect_chain[-1][0], {**general, "host": "sftp.acme.test", "username": "etl"}, follow=True)
    assert done.status_code == 200 and "was changed successfully" in done.content.decode()
    conn.refresh_from_db()
    assert (conn.kind, conn.host, conn.username, conn.password) == ("sftp", "sftp.acme.test", "etl", "old-Pa55")


def test_a_kind_that_does_not_exist_is_refused_on_the_page(client, superuser):
    client.force_login(superuser)
    org = factories.organization("Acme")
    response = client.post(ADD, {"organization": str(org.pk), "name": "x", "kind": "gopher"})
    assert response.status_code == 200
    assert "Select a valid choice. gopher is not one of the available choices." in response.content.decode()
    assert not Connection.objects.exists()


# Organizations and GPG keys: the other two things only a superuser makes (SPEC §7).


def test_a_superuser_adds_an_organization_through_the_admin(client, superuser):
    client.force_login(superuser)
    assert client.get("/admin/connections/organization/add/").status_code == 200
    typed = {"name": "Acme Corp", "description": "Our biggest vendor", "address": "1 Main St\nSpringfield",
             "contact_name": "Ann Lee", "contact_email": "ann@acme.test", "contact_phone": "+31 20 555 0100"}
    response = client.post("/admin/connections/organization/add/", typed, follow=True)

    org = Organization.objects.get()
    assert response.redirect_chain[-1][0] == "/admin/connections/organization/"
    assert {name: getattr(org, name) for name in typed} == typed
    assert "Acme Corp" in response.content.decode()


def test_a_superuser_adds_a_gpg_key_and_sees_what_was_read_from_it(client, superuser, gpg_home):
    client.force_login(superuser)
    assert client.get("/admin/connections/gpgkey/add/").status_code == 200
    response = client.post("/admin/connections/gpgkey/add/", {"name": "acme", "public_key": gpg_home.public_key_armored},
                           follow=True)

    key = GpgKey.objects.get()
    assert response.status_code == 200 and key.name == "acme"
    assert key.fingerprint == gpg_home.fingerprint and "courier@example.test" in key.user_ids
    change = client.get(f"/admin/connections/gpgkey/{key.pk}/change/").content.decode()
    assert gpg_home.fingerprint in change


def test_a_gpg_key_that_is_not_a_key_is_refused_on_the_page(client, superuser):
    client.force_login(superuser)
    response = client.post("/admin/connections/gpgkey/add/", {"name": "junk", "public_key": "not a key at all"})
    assert response.status_code == 200 and "errornote" in response.content.decode()
    assert not GpgKey.objects.exists()
