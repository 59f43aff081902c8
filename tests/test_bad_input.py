"""Bad input anywhere gets a clear message naming what was wrong, and nothing already stored is lost (SPEC §10).

Table-driven, each case with its exact message:

- runs (query, login, host key, unreachable host, GPG key, encodings,
  empty results, scripts, file names, destinations): the run fails at the
  named stage with exactly that message; the task's settings, the stored
  file of an earlier run and the file already at the destination are
  untouched, and no new or partial file appears there;
- inputs that are fine but unusual (non-UTF-8 bytes kept as they are, an
  empty result, quotes, backslashes and `$` in parameter values, a 10 MB
  field) give the output defined below;
- forms (a saved project given a bad trigger or zone; a bad GPG key);
- the JSON import (wrong types and values: nothing is imported);
- every command given an unknown project, task or connection (exit 2);
- downloads and resends of a stored file whose path was tampered with.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from connections.models import GpgKey
from projects.models import Project
from runs.models import Run, RunFile, RunStatus
from runs.resend import ResendError, queue_resend
from tasks.models import CodeLocation, Task
from tests import factories
from tests.bad_input_support import (
    PREVIOUS,
    Fails,
    Site,
    closed_port,
    expired_key,
    ftp_box,
    keep,
    maria,
    other_host_key,
    with_destination,
    with_param,
    with_smb_destination,
)
from tests.delivery_support import folder_destination, run_task
from tests.security_support import fingerprint

pytestmark = pytest.mark.django_db

CP1252 = "id,name\n1,Zoë\n".encode("cp1252")


@pytest.fixture
def processing_venvs(settings, wheelhouse, session_venvs):
    """Scripts get their environments from the session's cache, pip from the test wheelhouse (no index)."""
    settings.COURIER_PIP_OPTIONS = ["--no-index", "--find-links", str(wheelhouse)]
    settings.COURIER_VENV_DIR = session_venvs


@pytest.fixture
def site(request, tmp_path) -> Site:
    """An outbox already holding the file an earlier run delivered."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "orders.csv").write_bytes(PREVIOUS)
    return Site(request, tmp_path, outbox)


UPLOAD_FAILED = "1 of 2 deliveries failed; first: "  # the outbox took its copy: the other destination failed

RUN_CASES = [
    Fails("query syntax error", lambda s: s.query("selec id from orders"), "source",
          'The query on Acme/src failed [HY000]: [SQLite]near "selec": syntax error (1) (1)'),
    Fails("missing table", lambda s: s.query("select * from no_such_table"), "source",
          "The query on Acme/src failed [HY000]: [SQLite]no such table: no_such_table (1) (1)"),
    Fails("query of only comments", lambda s: s.query("  -- nothing\n"), "source",
          "The task's query holds only comments and blank lines: there is nothing to run."),
    Fails("empty query", lambda s: s.query("  \n"), "source", "The task's query or command is empty."),
    Fails("wrong database password", lambda s: s.query("select 1", maria(s, Pwd="wrong-password")), "source",
          "Connecting on Acme/maria failed [28000]: [ma-3.1.15]Access denied for user '{user}'@'127.0.0.1' (using password: YES) (1045)"),
    Fails("database host unreachable", lambda s: s.query("select 1", maria(s, Port=closed_port(s))), "source",
          "Connecting on Acme/maria failed [HY000]: [ma-3.1.15]Can't connect to server on '127.0.0.1' (115) (2002)", permanent=False),
    Fails("unknown ODBC driver", lambda s: s.query("select 1", factories.connection("database", name="odd", odbc="Driver={No Such Driver};Database=x;")),
          "source", "Connecting on Acme/odd failed [01000]: [unixODBC][Driver Manager]Can't open lib 'No Such Driver' : file not found (0)"),
    Fails("ODBC string that is not one", lambda s: s.query("select 1", factories.connection("database", name="odd", odbc="just some words")),
          "source", "Connecting on Acme/odd failed [IM002]: [unixODBC][Driver Manager]Data source name not found and no default driver specified (0)"),
    Fails("wrong SFTP password", with_destination(lambda s: s.sftp(password="not-the-password")), "delivery",
          UPLOAD_FAILED + "Login to 127.0.0.1:{port} as etltest was refused (Acme/drop): wrong password or key."),
    Fails("wrong host key", with_destination(lambda s: s.sftp(host_key=other_host_key(s))), "delivery",
          UPLOAD_FAILED + "The host key of 127.0.0.1:{port} does not match the key pinned for Acme/drop "
          "(server offered ssh-ed25519 {fingerprint}). Refusing to connect."),
    Fails("unreachable SFTP host", with_destination(lambda s: s.sftp(port=closed_port(s))), "delivery",
          UPLOAD_FAILED + "Cannot connect to 127.0.0.1:{closed} (Acme/drop): Connection refused.", permanent=False),
    Fails("wrong FTP password", with_destination(lambda s: ftp_box(s, password="nope")), "delivery",
          UPLOAD_FAILED + "Login to 127.0.0.1:{ftp} as etl was refused (Acme/box): 530 Authentication failed."),
    Fails("destination folder with ..", with_destination(lambda s: s.sftp(), folder="../elsewhere"), "delivery",
          UPLOAD_FAILED + "The path “../elsewhere” may not contain “..”."),
    Fails("expired GPG key", lambda s: s.ok_query(gpg_key=expired_key(s)), "output",
          "The GPG key “vendor” ({fp}) expired on 2024-01-31; nothing was encrypted or sent."),
    Fails("non-UTF-8 source re-written as UTF-8", lambda s: s.ftp_file("latin.csv", CP1252, source_delimiter=",", output_type="csv"),
          "source", "latin.csv is not utf-8 text (line 2: invalid continuation byte)."),
    Fails("empty result where rows are required", lambda s: s.query("select * from orders where id < 0", source_fail_on_empty=True),
          "guard", "Row guard: 0 rows; no rows is not allowed. Broken: the result has no rows. Action: the run fails.", permanent=False),
    Fails("no file matches", lambda s: s.ftp_file("a.csv", b"x", source_path="in/missing_*.csv"), "source",
          "No file matched in/missing_*.csv on Acme/ftp.", permanent=False),
    Fails("script exits with 1", lambda s: s.script("import sys\nprint('half done')\nsys.exit(1)\n"), "processing",
          "The processing script exited with status 1; its output is in the log above.", permanent=False),
    Fails("script returns a path outside its folder", lambda s: s.script("print(['/etc/passwd'])\n"), "processing",
          "The script returned the path “/etc/passwd”, which lies outside the run's folder {workdir}."),
    Fails("script returns a path with ..", lambda s: s.script("print(['../../escape.csv'])\n"), "processing",
          "The script returned the path “../../escape.csv”, which lies outside the run's folder {workdir}."),
    Fails("script returns a missing file", lambda s: s.script("print(['nothing-here.csv'])\n"), "processing",
          "The script returned the path “nothing-here.csv”, which does not exist."),
    Fails("output name with ../", lambda s: s.ok_query(output_name="../../etc/cron.d/evil"), "output",
          "The output file name cannot be made: file name '../../etc/cron.d/evil' contains a path separator"),
    Fails("output name with a backslash", lambda s: s.ok_query(output_name="..\\evil"), "output",
          "The output file name cannot be made: file name '..\\\\evil' contains a path separator"),
    Fails("output name with a line break", lambda s: s.ok_query(output_name="orders\r\nDELE x"), "output",
          "The output file name cannot be made: file name 'orders\\r\\nDELE x' contains a control character"),
    Fails("destination folder missing on the server", with_destination(lambda s: s.sftp(folder="/proc/no-such-folder")), "delivery",
          UPLOAD_FAILED + "Cannot upload /proc/no-such-folder/orders.csv on Acme/drop: No such file."),
    # A local folder takes “?” in a name; the SMB server alone refuses it.
    Fails("file name the server rejects", with_smb_destination(output_name="orders?"), "delivery",
          '1 of 1 deliveries failed; first: Cannot check orders?.csv on Acme/share: the server refuses the name '
          '(SMB names may not hold \\ / : * ? " < > |).', outbox=False),
    Fails("bad date pattern in a parameter", lambda s: with_param(s.ok_query(), "@day", "parse(%Y-%m"), "parameters",
          "The parameters cannot be read: parameter '@day': parse( at character 1 has no closing parenthesis"),
    Fails("delimiter of two characters", lambda s: s.ok_query(output_type="text", output_delimiter="||"), "output",
          "The delimiter “||” must be a single character (or \\t for tab)."),
    Fails("a 40,000-character cell in Excel", lambda s: s.query("select printf('%.*c', 40000, 'x') as big", output_type="xlsx"),
          "output", "The value in row 1, column “big” cannot be written to Excel: it is 40,000 characters long; "
          "an Excel cell holds at most 32,767."),
]


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.id)
def test_a_run_given_bad_input_fails_with_a_clear_message_and_loses_nothing(case: Fails, site: Site):
    task = case.build(site)
    if case.outbox:
        # Set to skip an existing file: the earlier run's file is there and must stay as it is.
        folder_destination(task, site.outbox, name="outbox", if_exists="skip", position=1)
    kept = keep(task, site.outbox)
    run = run_task(task)
    values = {**site.values, "run": run.pk, "workdir": (Path(settings.COURIER_WORK_DIR) / f"run-{run.pk}").resolve()}
    expected = case.message.format(**values)
    assert (run.status, run.error_stage, run.error, run.permanent) == (RunStatus.FAILED, case.stage, expected, case.permanent)
    assert run.log_lines.filter(level="error", message=expected).exists()
    kept.assert_intact(task)


# --------------------------------------------------------------------------
# Unusual input that is fine: the behaviour is defined
# --------------------------------------------------------------------------


def delivered(site: Site, task: Task, name: str) -> bytes:
    folder_destination(task, site.outbox, name="outbox")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return (site.outbox / name).read_bytes()


def test_non_utf8_bytes_kept_as_is_pass_through_unchanged(site):
    """“Keep as is” never decodes: a cp1252 file arrives byte for byte, whatever the output encoding says."""
    assert delivered(site, site.ftp_file("latin.csv", CP1252, output_type="keep", output_encoding="utf-8"), "latin.csv") == CP1252


def test_an_empty_result_gives_a_header_only_file_unless_rows_are_required(site):
    data = delivered(site, site.query("select id, customer from orders where id < 0", output_name="empty"), "empty.csv")
    assert data == b"id,customer\n"


def test_quotes_backslashes_and_dollars_in_parameter_values_go_into_sql_and_names_as_written(site):
    """SQL gets the value as written (the server then reads its own escapes); a file name gets it verbatim, unexpanded."""
    task = site.query("SET @v = '';\nSELECT @v AS v", maria(site), output_name="@who")
    with_param(task, "@v", "'C:\\\\temp\\\\new ''q'' \"d\" $HOME %Y'")
    with_param(task, "@who", "O'Brien \"$HOME\" %d")
    data = delivered(site, task, "O'Brien \"$HOME\" %d.csv")
    assert data == b'v\n"C:\\temp\\new \'q\' ""d"" $HOME %Y"\n'


def test_quotes_backslashes_and_dollars_reach_a_script_unchanged(site):
    raw = "C:\\temp \"q\" 'x' $HOME \\$ `id` %Y"
    site.server("processing_venvs")
    task = Task.objects.create(project=site.project(), name="script", source_kind="python")
    CodeLocation.objects.create(task=task, role="processing", location="inline",
                                text="import os\nopen('raw.txt', 'w').write(os.environ['raw'])\nprint(['raw.txt'])\n")
    with_param(task, "raw", raw)
    assert delivered(site, task, "raw.txt").decode() == raw


def test_a_10_mb_field_arrives_whole(site):
    size = 10 * 1024 * 1024
    data = delivered(site, site.query(f"select printf('%.*c', {size}, 'x') as big", output_name="big"), "big.csv")
    assert data == b"big\n" + b"x" * size + b"\n"


# --------------------------------------------------------------------------
# Forms
# --------------------------------------------------------------------------


def project_form(project: Project, **overrides) -> dict:
    data = {"name": project.name, "description": "", "owner": project.owner_id, "timezone": project.timezone, "cron": project.cron,
            "interval_every": "", "interval_unit": "", "once_at": "", "start_at": "", "end_at": "",
            "param-TOTAL_FORMS": "1", "param-INITIAL_FORMS": "1", "param-MIN_NUM_FORMS": "0", "param-MAX_NUM_FORMS": "1000"}
    param = project.parameters.get()
    data.update({"param-0-id": param.pk, "param-0-key": param.key, "param-0-entered_value": param.value, "param-0-position": "0"})
    return {**data, **overrides}


@pytest.mark.parametrize("overrides, message", [
    ({"cron": "61 6 * * *"}, "“61 6 * * *”: the minute field “61” is not valid; it takes 0-59, with lists (1,15), ranges (1-5) and steps (*/10)."),
    ({"cron": "0 6 * *"}, "“0 6 * *” has 4 fields; a cron trigger needs five (minute hour day-of-month month day-of-week)."),
    ({"interval_every": "0", "interval_unit": "hours"}, "The interval must be a positive whole number."),
    ({"interval_every": "-5", "interval_unit": "hours"}, "Ensure this value is greater than or equal to 0."),
    ({"timezone": "Europe/Atlantis"}, "Unknown time zone “Europe/Atlantis”; use an IANA name such as Europe/Amsterdam."),
    ({"once_at": "yesterday-ish"}, "Enter a valid date/time."),
])
def test_a_bad_trigger_on_a_saved_project_is_refused_and_the_saved_one_kept(client, superuser, overrides, message):
    project = factories.project("Daily", cron="0 6 * * *", timezone="Europe/Amsterdam")
    project.parameters.create(key="client", value="acme")
    schedules = list(Schedule.objects.filter(name__startswith=f"courier:project:{project.pk}:").values_list("name", "cron", "next_run"))
    client.force_login(superuser)
    before = fingerprint()
    response = client.post(reverse("courier:project_edit", args=[project.pk]), project_form(project, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert fingerprint() == before
    assert schedules and schedules == list(Schedule.objects.filter(name__startswith=f"courier:project:{project.pk}:")
                                           .values_list("name", "cron", "next_run"))


def armoured(body: str, kind: str = "PUBLIC") -> str:
    return f"-----BEGIN PGP {kind} KEY BLOCK-----\n\n{body}\n-----END PGP {kind} KEY BLOCK-----\n"


@pytest.mark.parametrize("text, message", [
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA", "This is not an ASCII-armoured OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)."),
    (armoured("bm90IGEga2V5IGF0IGFsbA=="), "The public key cannot be read by GnuPG (damaged or not a key)."),
    (armoured("x", "PUBLIC") + armoured("y", "PRIVATE"), "This is a private key; give the public key only."),
    ("EXPIRED", "The key {fingerprint} expired on {day}."),
])
def test_a_bad_gpg_key_is_refused_and_the_saved_one_kept(client, superuser, gpg_home, text, message):
    key = GpgKey.objects.create(name="vendor", public_key=gpg_home.public_key_armored, fingerprint=gpg_home.fingerprint)
    values = {}
    if text == "EXPIRED":
        text, values = expired_armoured_key()
    client.force_login(superuser)
    before = fingerprint()
    response = client.post(reverse("admin:connections_gpgkey_change", args=[key.pk]), {"name": "vendor", "public_key": text})
    assert response.status_code == 200
    assert message.format(**values) in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert fingerprint() == before


def expired_armoured_key() -> tuple[str, dict]:
    """A key made “three days ago” that lived one day (gpg's --faked-system-time), and what the message names."""
    import gnupg

    from tests.servers import throwaway_gnupghome

    made_at = datetime.now() - timedelta(days=3)
    with throwaway_gnupghome() as home:
        gpg = gnupg.GPG(gnupghome=str(home), options=["--faked-system-time", f"{made_at:%Y%m%dT%H%M%S}!"])
        key = gpg.gen_key(gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH", subkey_curve="cv25519",
                                            name_email="old@example.test", no_protection=True, expire_date="1d"))
        text = gpg.export_keys(key.fingerprint)
        [info] = gpg.list_keys()
    expired = datetime.fromtimestamp(int(info["expires"]), tz=UTC)
    return text, {"fingerprint": info["fingerprint"], "day": f"{expired:%Y-%m-%d}"}


# --------------------------------------------------------------------------
# The JSON import: wrong types and values import nothing
# --------------------------------------------------------------------------


def valid_config() -> dict:
    return {
        "version": 1,
        "organizations": [{"name": "Acme", "connections": [
            {"kind": "database", "name": "db", "dialect": "sqlite", "odbc": "Driver={SQLite3};Database=/srv/x.db;"},
            {"kind": "folder", "name": "box", "path": "/srv/out"},
        ]}],
        "gpg_keys": [],
        "projects": [{
            "name": "Nightly", "owner": "importer", "timezone": "UTC", "triggers": {"cron": "0 6 * * *"},
            "tasks": [{"name": "orders", "enabled": True, "retries": {"max": 2},
                       "source": {"kind": "database", "connection": "Acme/db", "code": {"location": "inline", "text": "select 1"}},
                       "output": {"type": "csv"}, "destinations": []}],
        }],
    }


def mutate(path: str, value) -> Callable[[dict], dict]:
    """Set the value at a dotted path (`projects.0.tasks.0.enabled`) of the valid file."""
    def apply(data: dict) -> dict:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for part in parents:
            target = target[part]
        target[last] = value
        return data

    return apply


IMPORT_CASES = [
    (mutate("version", 2), ["version: must be 1"]),
    (lambda data: [data], ["$: must be an object, not a list"]),
    (mutate("organizations", {"name": "Acme"}), ["$.organizations: must be a list, not an object"]),
    # A name of the wrong type is also reported as missing, where the project is checked as a whole.
    (mutate("projects.0.name", 7), ["projects[0].name: must be a string, not a number", "projects[0].name: This field cannot be blank."]),
    (mutate("projects.0.owner", "nobody"), ['projects[0].owner: no user "nobody"']),
    (mutate("projects.0.timezone", "Mars/Base"), ['projects[0].timezone: unknown time zone "Mars/Base"']),
    (mutate("projects.0.triggers", {"cron": "61 * * * *"}), ["projects[0].triggers.cron: “61 * * * *”: the minute field “61” is not valid; it takes 0-59, with lists (1,15), ranges (1-5) and steps (*/10)."]),
    (mutate("projects.0.triggers", {"interval": {"every": 0, "unit": "hours"}}),
     ["projects[0].triggers.interval.every: must be at least 1",
      "projects[0].triggers.interval.unit: Give both the number and the unit of the interval, or neither."]),
    (mutate("projects.0.triggers", {"once": 20260101}), ["projects[0].triggers.once: must be an ISO date-time string or null, not a number"]),
    (mutate("projects.0.tasks.0.enabled", "yes"), ["projects[0].tasks[0].enabled: must be true or false, not a string"]),
    (mutate("projects.0.tasks.0.retries", {"max": "2"}), ["projects[0].tasks[0].retries.max: must be a whole number, not a string"]),
    (mutate("organizations.0.connections.1.kind", "telnet"),
     [('organizations[0].connections[1].kind: unknown connection kind "telnet" (one of "database", "sftp", "ftp", "smb", "ssh", '
       '"gitlab", "web", "folder")')]),
]


@pytest.mark.parametrize("change, errors", IMPORT_CASES, ids=[e[0].split(":")[0] for _, e in IMPORT_CASES])
def test_an_import_with_wrong_types_imports_nothing_and_names_each_problem(tmp_path, change, errors, django_user_model):
    django_user_model.objects.create_user("importer")
    project = factories.project("Nightly", owner=django_user_model.objects.get(username="importer"), cron="30 5 * * *")
    factories.connection("database", name="db", odbc="Driver={SQLite3};Database=/srv/old.db;")  # what is there already
    before = fingerprint()
    path = tmp_path / "courier.json"
    path.write_text(json.dumps(change(valid_config())))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("import_config", str(path), stdout=out, stderr=err)
    assert refused.value.returncode == 2
    assert str(refused.value) == f"Nothing was imported: {len(errors)} problem(s) in {path}."
    assert err.getvalue().splitlines() == errors
    assert fingerprint() == before
    project.refresh_from_db()
    assert project.cron == "30 5 * * *"


# --------------------------------------------------------------------------
# Commands given names that do not exist
# --------------------------------------------------------------------------

NO_TASK = "No task “Nope/none”: check the project and task names (they are case-sensitive)."

COMMAND_CASES = [
    (["run_task", "Nope/none"], NO_TASK),
    (["run_task", "none"], "“none” is not of the form “project/task” (or a task id)."),
    (["run_task", "99999", "--wait"], "No task has id 99999."),
    (["run_project", "Nope"], "No project “Nope”."),
    (["runs", "Nope/none"], NO_TASK + " No project has that name either."),
    (["preview_task", "Nope/none"], NO_TASK),
    (["preview_task", "Nightly/orders", "--at", "soon"], "--at “soon” is not an ISO date and time (e.g. 2024-03-31T06:00 or 2024-03-31)."),
    (["cancel_retry", "Nope/none"], NO_TASK),
    (["reschedule", "--task", "Nope/none"], NO_TASK),
    (["reschedule", "--project", "Nope"], "No project “Nope”."),
    (["check_connections", "Acme/nope"], "No connection “Acme/nope”."),
    (["check_connections", "nope"], "No connection “nope” (write “Organization/name”)."),
    (["import_config", "/no/such/courier.json"], "Cannot read /no/such/courier.json: No such file or directory."),
]


@pytest.mark.parametrize("args, message", COMMAND_CASES, ids=[" ".join(a) for a, _ in COMMAND_CASES])
def test_a_command_given_an_unknown_name_exits_2_with_a_clear_message(args, message, tmp_path):
    factories.query_task(factories.project("Nightly"), factories.connection("database", name="db", odbc="Driver=x;"), "select 1")
    before = fingerprint()
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    assert (refused.value.returncode, str(refused.value)) == (2, message)
    assert fingerprint() == before


def test_invalid_json_is_refused_with_exit_2(tmp_path):
    path = tmp_path / "courier.json"
    path.write_bytes(b"{'version': 1}")
    with pytest.raises(CommandError) as refused:
        call_command("import_config", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert refused.value.returncode == 2
    assert str(refused.value) == f"{path} is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)."


def test_on_the_command_line_the_error_is_one_line_on_stderr_and_the_exit_code_2():
    from django.db import connection

    # The command reads the test database (migrated, and empty outside this test's transaction).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    done = subprocess.run([sys.executable, "manage.py", "run_task", "Nope/none", "--skip-checks"], cwd=Path(__file__).parent.parent,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.splitlines()) == (2, [f"CommandError: {NO_TASK}"])


# --------------------------------------------------------------------------
# Stored files cannot be reached outside the file storage
# --------------------------------------------------------------------------


@pytest.fixture
def tampered(site) -> RunFile:
    task = site.ok_query()
    folder_destination(task, site.outbox, name="outbox", if_exists="overwrite")
    kept = keep(task, site.outbox)
    RunFile.objects.filter(pk=kept.record.pk).update(stored="../../../../../../etc/passwd")
    return RunFile.objects.get(pk=kept.record.pk)


@pytest.mark.parametrize("stored", ["../../../../../../etc/passwd", "/etc/passwd"])
def test_a_tampered_stored_path_is_never_served(client, superuser, tampered, stored):
    RunFile.objects.filter(pk=tampered.pk).update(stored=stored)
    client.force_login(superuser)
    response = client.get(reverse("courier:runfile_download", args=[tampered.pk]))
    assert response.status_code == 400
    assert b"root:" not in b"".join(response.streaming_content if response.streaming else [response.content])


def test_a_tampered_stored_path_is_never_resent_or_redelivered(superuser, tampered, site):
    with pytest.raises(ResendError) as refused:
        queue_resend(tampered, superuser)
    expected = (f"The stored copy of orders.csv (run {tampered.run_id}) is recorded at a path outside Courier's file storage; "
                "it is not read or sent.")
    assert str(refused.value) == expected
    assert not tampered.deliveries.filter(resent_by__isnull=False).exists()  # nothing queued
    assert sorted(os.listdir(site.outbox)) == ["orders.csv"] and (site.outbox / "orders.csv").read_bytes() == PREVIOUS


def test_pruning_leaves_a_tampered_path_alone_and_says_so(tampered):
    Run.objects.filter(pk=tampered.run_id).update(finished_at=timezone.now() - timedelta(days=400))
    Run.objects.filter(pk=tampered.run_id).update(queued_at=timezone.now() - timedelta(days=400))
    with pytest.raises(CommandError) as refused:
        call_command("prune_history", "--days", "30", "--keep", "0", stdout=io.StringIO())
    assert str(refused.value) == ("Some stored files could not be deleted:\n"
                                  "../../../../../../etc/passwd: recorded at a path outside Courier's file storage; left alone")
    assert Path("/etc/passwd").read_text().startswith("root:")
