"""import_config refuses what it cannot take (SPEC §12): unknown keys, control characters, absurd nesting.

Each problem names its JSON path; the command exits 2 with one line per
problem and changes nothing. The keys of SPEC §12 are covered by the
round trip in tests/test_config_io.py.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connections.models import Connection
from projects.models import Project
from tasks.configuration.exporter import export_config
from tasks.configuration.importer import import_config
from tasks.configuration.reader import ConfigError
from tasks.configuration.schema import problems
from tasks.models import CodeLocation, CodeRole, Notification, Task, TaskParameter
from tests import factories
from tests.test_config_io import spec_example

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(gpg_home, django_user_model):
    django_user_model.objects.create_user("alice")
    return spec_example(gpg_home.public_key_armored)


def refused(document) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        import_config(document)
    assert not Connection.objects.exists() and not Project.objects.exists()
    return caught.value.errors


def task(document, index: int = 0) -> dict:
    return document["projects"][0]["tasks"][index]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: task(d).update(outptu=task(d)["output"]), "projects[0].tasks[0].outptu: unknown key"),
    (lambda d: d.update(organisations=[]), "organisations: unknown key"),
    (lambda d: d["organizations"][0]["connections"][1].update(hostname="x"), "organizations[0].connections[1].hostname: unknown key (a sftp connection takes folder, host, host_key, "
     "key_passphrase, kind, name, password, port, private_key, username)"),
    (lambda d: d["organizations"][0]["contact"].update(fax=""), "organizations[0].contact.fax: unknown key"),
    (lambda d: d["projects"][0]["triggers"]["interval"].update(evry=5), "projects[0].triggers.interval.evry: unknown key"),
    (lambda d: task(d)["retries"].update(maximum=3), "projects[0].tasks[0].retries.maximum: unknown key"),
    (lambda d: task(d)["source"]["code"].update(txt="select 2"), "projects[0].tasks[0].source.code.txt: unknown key (an inline code location takes cache, location, text)"),
    (lambda d: task(d)["processing"].update(entrypoint="main.py"), "projects[0].tasks[0].processing.entrypoint: unknown key"),
    (lambda d: task(d)["output"]["zip"].update(password="x"), "projects[0].tasks[0].output.zip.password: unknown key"),
    (lambda d: task(d)["destinations"][0].update(overwrite=True), "projects[0].tasks[0].destinations[0].overwrite: unknown key"),
    (lambda d: task(d)["email"]["failure"].update(attach=True), "projects[0].tasks[0].email.failure.attach: unknown key"),
    (lambda d: task(d)["parameters"][0].update(secret=True), "projects[0].tasks[0].parameters[0].secret: unknown key"),
    (lambda d: d["gpg_keys"][0].update(fingerprint="AB"), "gpg_keys[0].fingerprint: unknown key"),
    # A key of another kind is no key of this one.
    (lambda d: task(d)["source"].update(path="in/*.csv"),
     "projects[0].tasks[0].source.path: unknown key (a database source takes code, connection, fail_on_empty, headers, kind)"),
    (lambda d: task(d).update({"out put": {}}), 'projects[0].tasks[0]["out put"]: unknown key'),
])
def test_an_unknown_key_anywhere_is_refused_with_its_path(example, change, expected):
    change(example)
    assert expected in refused(example)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["projects"][0].update(name="Night\x00ly"), "projects[0].name: contains a control character (U+0000)"),
    (lambda d: task(d).update(name="orders\n"), "projects[0].tasks[0].name: contains a control character (U+000A)"),
    (lambda d: d["organizations"][0].update(name="Ac\tme"), "organizations[0].name: contains a control character (U+0009)"),
    (lambda d: d["organizations"][0]["connections"][1].update(name="dr\x1bop"),
     "organizations[0].connections[1].name: contains a control character (U+001B)"),
    (lambda d: d["organizations"][0]["connections"][2].update(folder="/in\r\nDELE x"),
     "organizations[0].connections[2].folder: contains control characters (U+000A, U+000D)"),
    (lambda d: task(d)["destinations"][0].update(folder="in\x00"), "projects[0].tasks[0].destinations[0].folder: contains a control character (U+0000)"),
    (lambda d: task(d)["source"]["code"].update(text="select 1\x00"), "projects[0].tasks[0].source.code.text: contains a control character (U+0000)"),
    (lambda d: task(d)["parameters"][0].update(key="@to\x07ken"), "projects[0].tasks[0].parameters[0].key: contains a control character (U+0007)"),
    (lambda d: task(d).update({"na\x00me": "x"}), 'projects[0].tasks[0]["na\\u0000me"]: unknown key'),
])
def test_control_characters_are_refused_with_their_path(example, change, expected):
    change(example)
    assert expected in refused(example)


def test_tabs_and_line_breaks_stay_allowed_where_text_has_them(example):
    task(example)["source"]["code"]["text"] = "select 1 as one\r\n\tfrom dual\n"
    task(example)["email"]["success"]["message"] = "Hello,\n\tthe file is attached.\n"
    task(example)["output"]["delimiter"] = "\t"
    import_config(copy.deepcopy(example))
    assert Project.objects.get().tasks.get(name="orders").output_delimiter == "\t"


def run_command(path: Path) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command("import_config", str(path))
    return caught.value


def test_the_command_exits_2_naming_each_problem(example, tmp_path, capsys):
    task(example).update(outptu={})
    example["projects"][0]["name"] = "Night\x00ly"
    path = tmp_path / "courier.json"
    path.write_text(json.dumps(example))

    error = run_command(path)

    assert error.returncode == 2 and "Nothing was imported: 2 problem(s)" in str(error)
    assert capsys.readouterr().err.splitlines() == [
        "projects[0].name: contains a control character (U+0000)",
        "projects[0].tasks[0].outptu: unknown key",
    ]


def test_deeply_nested_json_is_a_clear_error_not_a_traceback(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}

    done = subprocess.run([sys.executable, "manage.py", "import_config", str(path)], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"CommandError: {path} is nested too deeply to be a Courier configuration."



def test_whatever_export_config_writes_passes_the_key_check(django_user_model):
    """The schema and the exporter must not drift apart: every kind of connection, source and code location."""
    conns = {kind: factories.connection(kind, **fields) for kind, fields in {
        "database": {"odbc": "Driver={SQLite3};Database=x;"}, "sftp": {"host": "h", "username": "u"},
        "ftp": {"host": "h"}, "smb": {"host": "h", "share": "s", "username": "u"}, "ssh": {"host": "h", "username": "u"},
        "gitlab": {"url": "https://gitlab.example.test"}, "web": {"url": "https://raw.example.test/"},
        "folder": {"folder": "/srv/outbox"},
    }.items()}
    project = factories.project(owner=django_user_model.objects.create_user("alice"))
    for kind in ("database", "sftp", "ftp", "smb", "ssh", "python"):
        task = Task.objects.create(project=project, name=kind, source_kind=kind, source_connection=conns.get(kind) if kind != "python" else None,
                                   source_path="in/*.csv", zip_enabled=True, zip_name="z")
        TaskParameter.objects.create(task=task, key="@day", value="x")
        factories.destination(task, conns["folder"], folder="daily")
        Notification.objects.create(task=task, event="success", recipients="a@example.test")
        Notification.objects.create(task=task, event="failure", recipients="a@example.test")
    locations = {"database": ("inline", None), "sftp": ("sftp", "path"), "ftp": ("ftp", "path"), "smb": ("smb", "path"),
                 "ssh": ("gitlab", "url"), "python": ("web", "url")}
    for name, (location, field) in locations.items():
        task = Task.objects.get(name=name)
        values = {"text": "x"} if field is None else {field: "q.sql" if field == "path" else f"{conns[location].url}q.sql"}
        CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location=location,
                                    connection=conns.get(location) if field else None, cache=True, **values)
    CodeLocation.objects.create(task=Task.objects.get(name="database"), role=CodeRole.SOURCE, location="inline", text="select 1")

    document = export_config(include_secrets=True)

    assert problems(document) == []
    assert {c["kind"] for c in document["organizations"][0]["connections"]} == set(conns)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: task(d)["row_guard"].update(action="stop"),
     'projects[0].tasks[0].row_guard.action: unknown action "stop" (one of "fail", "hold", "warn")'),
    (lambda d: task(d)["row_guard"].update(min_rows=10, max_rows=5),
     "projects[0].tasks[0].row_guard.max_rows: The upper row limit must not be below the lower one."),
    (lambda d: task(d)["row_guard"].update(median_percent=None),
     "projects[0].tasks[0].row_guard.median_percent: Say how many percent the row count may differ from the median."),
    (lambda d: task(d)["row_guard"].update(min_rows=-1), "projects[0].tasks[0].row_guard.min_rows: must be at least 0"),
    (lambda d: task(d)["row_guard"].update(min_row=1), "projects[0].tasks[0].row_guard.min_row: unknown key"),
    (lambda d: task(d)["destinations"][0]["done_file"].update(name="ready/%Y%m%d.ok"),
     "projects[0].tasks[0].destinations[0].done_file: The done file is written beside the files: its name may not contain a folder."),
    (lambda d: task(d)["destinations"][0]["done_file"].pop("name"), "projects[0].tasks[0].destinations[0].done_file.name: is required"),
    (lambda d: task(d)["email"]["failure"].update(after_failures=0), "projects[0].tasks[0].email.failure.after_failures: must be at least 1"),
    (lambda d: task(d)["email"]["success"].update(recovered=True), "projects[0].tasks[0].email.success.recovered: unknown key"),
    (lambda d: d["projects"][0].update(digest="yes"), "projects[0].digest: must be true or false, not a string"),
])
def test_a_bad_guard_done_file_or_alert_setting_is_refused_with_its_path(example, change, expected):
    change(example)
    assert expected in refused(example)
