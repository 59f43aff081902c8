"""export_config / import_config with the exact format of SPEC §12."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connections.models import Connection
from connections.secrets import stored_token
from projects.models import Project
from tasks.configuration.exporter import export_config
from tasks.configuration.importer import import_config
from tasks.configuration.reader import ConfigError
from tasks.models import Task

pytestmark = pytest.mark.django_db


def spec_example(public_key: str) -> dict:
    """The example of SPEC §12, with a real public key."""
    return {
        "version": 1,
        "organizations": [{
            "name": "Acme", "description": "", "address": "",
            "contact": {"name": "", "email": "", "phone": ""},
            "connections": [
                {"kind": "database", "name": "warehouse", "dialect": "postgresql",
                 "odbc": "Driver={PostgreSQL Unicode};Server=db;Port=5432;Database=dw;Uid=u;Pwd=p;",
                 "query_timeout": 3600, "login_timeout": 30, "read_only": False, "copy_export": True},
                {"kind": "sftp", "name": "drop", "host": "sftp.acme.test", "port": 22, "folder": "/incoming",
                 "username": "u", "password": "p", "private_key": "", "key_passphrase": "",
                 "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
                {"kind": "ftp", "name": "legacy", "host": "ftp.acme.test", "port": 21, "folder": "/",
                 "username": "u", "password": "p", "tls": False},
                {"kind": "smb", "name": "share", "server": "fs.acme.test", "port": 445, "share": "data",
                 "folder": "exports", "domain": "", "username": "u", "password": "p"},
                {"kind": "ssh", "name": "batch", "host": "batch.acme.test", "port": 22, "username": "u",
                 "password": "", "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----",
                 "key_passphrase": "", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
                {"kind": "gitlab", "name": "gitlab", "url": "https://gitlab.acme.test", "token": "t", "verify_tls": True},
                {"kind": "web", "name": "github", "url": "https://raw.githubusercontent.com/acme/",
                 "header": "Authorization", "token": "Bearer t", "verify_tls": True},
                {"kind": "folder", "name": "outbox", "path": "/srv/courier/outbox"},
            ],
        }],
        "gpg_keys": [{"name": "acme", "public_key": public_key}],
        "projects": [{
            "name": "Nightly", "description": "", "owner": "alice", "sequence": False, "timezone": "Europe/Amsterdam",
            "digest": True,
            "triggers": {"cron": "0 6 * * 1-5", "interval": {"every": 15, "unit": "minutes"},
                         "once": "2026-12-01T06:00:00", "start": None, "end": None},
            "missed_runs": {"policy": "latest", "catch_up_minutes": 360},
            "parameters": [{"key": "@day", "value": "'parse(%Y-%m-%d-1)'", "sensitive": False}],
            "tasks": [{
                "name": "orders", "enabled": True, "rank": 1, "timeout_minutes": 60,
                "retries": {"max": 2, "delay_minutes": 5, "backoff": 1.0, "on_every_failure": False},
                "parameters": [{"key": "@token", "value": "s3cr3t-param", "sensitive": True}],
                "source": {"kind": "database", "connection": "Acme/warehouse",
                           "code": {"location": "inline", "text": "select 1 as one"},
                           "headers": True, "fail_on_empty": False},
                "processing": {"code": {"location": "gitlab", "connection": "Acme/gitlab",
                                        "url": "https://gitlab.acme.test/g/p/-/blob/main/split.py", "cache": True},
                               "entry": None, "requirements": "pkg==1.2", "network": False},
                "output": {"type": "csv", "name": "orders_%Y%m%d.csv", "delimiter": ",", "headers": True,
                           "quoting": "minimal", "escape_char": "\\", "encoding": "utf-8", "line_ending": "lf",
                           "line_suffix": "", "zip": {"name": "orders_%Y%m%d.zip"}, "gpg": {"key": "acme", "armor": False}},
                "row_guard": {"min_rows": 1, "max_rows": 100000, "median_runs": 5, "median_percent": 50, "action": "hold"},
                "destinations": [{"kind": "sftp", "connection": "Acme/drop", "folder": "in",
                                  "if_exists": "fail", "skip_empty": True,
                                  "done_file": {"name": "orders_%Y%m%d.ready", "manifest": True}}],
                "email": {"success": {"to": "a@acme.test; b@acme.test", "subject": "done %Y", "message": "",
                                      "attach": True, "embed": False, "skip_empty": False},
                          "failure": {"to": "ops@acme.test", "subject": "", "message": "", "after_failures": 3,
                                      "recovered": True}},
                # It runs after a task further down the file.
                "expected_by": "07:30",
                "dependencies": {"after": ["Nightly/pickup"], "window_minutes": None, "give_up_after_minutes": 120},
            }, {
                "name": "pickup", "enabled": False, "rank": None, "timeout_minutes": 30,
                "retries": {"max": 0, "delay_minutes": 5, "backoff": 2.0, "on_every_failure": True},
                "parameters": [],
                "source": {"kind": "sftp", "connection": "Acme/drop", "path": "in/orders_%Y%m%d*.csv",
                           "missing_ok": True, "delimiter": "|"},
                "processing": None,
                "output": {"type": None, "name": "", "delimiter": ",", "headers": True, "quoting": "minimal",
                           "escape_char": "\\", "encoding": "utf-8", "line_ending": "crlf", "line_suffix": "~",
                           "zip": None, "gpg": None},
                "row_guard": None,
                "destinations": [{"kind": "folder", "connection": "Acme/outbox", "folder": "", "if_exists": "overwrite",
                                  "skip_empty": False, "done_file": None}],
                "email": {"success": None, "failure": None},
                "expected_by": None,
                "dependencies": {"after": [], "window_minutes": 90, "give_up_after_minutes": 360},
            }],
        }],
    }


@pytest.fixture
def example(gpg_home, django_user_model):
    django_user_model.objects.create_user("alice")
    return spec_example(gpg_home.public_key_armored)


def test_import_then_export_with_secrets_gives_the_same_document(example):
    import_config(copy.deepcopy(example))
    exported = export_config(include_secrets=True)
    exported["gpg_keys"][0]["public_key"] = exported["gpg_keys"][0]["public_key"].strip()
    example["gpg_keys"][0]["public_key"] = example["gpg_keys"][0]["public_key"].strip()
    # Connections and tasks come back ordered by name.
    example["organizations"][0]["connections"].sort(key=lambda c: c["name"])
    example["projects"][0]["tasks"].sort(key=lambda t: t["name"])
    assert exported == example


def test_export_without_secrets_leaves_them_out_and_reimport_keeps_them(example):
    import_config(copy.deepcopy(example))
    plain = export_config()
    text = json.dumps(plain)
    for secret in ("Pwd=p", "Bearer t", "s3cr3t-param", "BEGIN OPENSSH PRIVATE KEY"):
        assert secret not in text
    import_config(plain)
    drop = Connection.objects.get(name="drop")
    assert drop.password == "p"
    assert Task.objects.get(name="orders").parameters.get().clear_value == "s3cr3t-param"


def test_importing_twice_changes_nothing(example):
    import_config(copy.deepcopy(example))
    def snapshot():
        return (
            list(Connection.objects.values_list("updated_at", "password", "odbc")),
            list(Project.objects.values_list("updated_at")),
            list(Task.objects.values_list("updated_at")),
        )
    before = snapshot()
    import_config(copy.deepcopy(example))
    assert snapshot() == before


def test_secrets_are_ciphertext_in_the_database(example):
    import_config(copy.deepcopy(example))
    conn = Connection.objects.get(name="warehouse")
    assert "Pwd=p" not in stored_token(conn, "odbc")
    assert stored_token(conn, "odbc").startswith("gAAAA")


def test_one_bad_value_names_its_path_and_nothing_is_changed(example):
    example["projects"][0]["tasks"][1]["output"]["type"] = "xls"
    example["projects"][0]["owner"] = "alice"
    with pytest.raises(ConfigError) as caught:
        import_config(example)
    assert 'projects[0].tasks[1].output.type: unknown type "xls" (one of "csv", "text", "xlsx", "jsonl", "keep")' in caught.value.errors
    assert not Connection.objects.exists() and not Project.objects.exists()


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["projects"][0].update(owner="nobody"), 'projects[0].owner: no user "nobody"'),
    (lambda d: d["projects"][0].update(timezone="Mars/Olympus"), 'projects[0].timezone: unknown time zone "Mars/Olympus"'),
    (lambda d: d["projects"][0]["triggers"].update(interval={"every": 0, "unit": "minutes"}), "projects[0].triggers.interval.every: must be at least 1"),
    (lambda d: d["projects"][0]["triggers"].update(cron="61 * * * *"), "projects[0].triggers.cron: “61 * * * *”: the minute field “61” is not valid; it takes 0-59, with lists (1,15), ranges (1-5) and steps (*/10)."),
    (lambda d: d["projects"][0]["tasks"][0].update(enabled="yes"), "projects[0].tasks[0].enabled: must be true or false, not a string"),
    (lambda d: d["projects"][0]["tasks"][0]["source"].update(connection="Acme/nope"), 'projects[0].tasks[0].source.connection: no connection "Acme/nope"'),
    (lambda d: d["projects"][0]["tasks"][0]["source"].update(connection="Acme/drop"), 'projects[0].tasks[0].source.connection: "Acme/drop" is a sftp connection, not database'),
    (lambda d: d["projects"][0]["tasks"][0]["destinations"][0].update(if_exists="maybe"), 'projects[0].tasks[0].destinations[0].if_exists: unknown if_exists value "maybe" (one of "fail", "overwrite", "skip")'),
    (lambda d: d["organizations"][0]["connections"][0].update(kind="oracle"), 'organizations[0].connections[0].kind: unknown connection kind "oracle" (one of "database", "sftp", "ftp", "smb", "ssh", "gitlab", "web", "folder")'),
    (lambda d: d["gpg_keys"][0].update(public_key="-----BEGIN PGP PUBLIC KEY BLOCK-----\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----"), "gpg_keys[0].public_key: The public key cannot be read by GnuPG (damaged or not a key)."),
    (lambda d: d.update(version=2), "version: must be 1"),
    (lambda d: d["projects"][0]["missed_runs"].update(policy="sometimes"), 'projects[0].missed_runs.policy: unknown policy "sometimes" (one of "none", "latest", "all")'),
    (lambda d: d["projects"][0]["tasks"][0].update(expected_by="7h"), 'projects[0].tasks[0].expected_by: "7h" is not a time of day such as 07:30'),
    (lambda d: d["projects"][0]["tasks"][0]["dependencies"].update(after=["Nightly/nope"]), 'projects[0].tasks[0].dependencies.after[0]: no task "Nightly/nope"'),
    (lambda d: d["projects"][0]["tasks"][1]["dependencies"].update(after=["Nightly/orders"]),
     "projects[0].tasks[1].dependencies.after: these tasks would wait for each other for ever: Nightly/pickup → Nightly/orders → Nightly/pickup"),
])
def test_bad_values_are_reported_with_their_json_path(example, change, expected):
    change(example)
    with pytest.raises(ConfigError) as caught:
        import_config(example)
    assert expected in caught.value.errors
    assert not Project.objects.exists()


def test_commands_round_trip_and_report_bad_files(example, tmp_path, capsys):
    path = tmp_path / "courier.json"
    path.write_text(json.dumps(example))
    call_command("import_config", str(path))
    call_command("export_config", "--include-secrets")
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["projects"][0]["name"] == "Nightly"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CommandError) as caught:
        call_command("import_config", str(tmp_path / "bad.json"))
    assert caught.value.returncode == 2 and "is not valid JSON" in str(caught.value)
