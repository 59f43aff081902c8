"""Processing scripts in the pipeline: invocation, returned files, exit status, timeout, the site switch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from runs.models import RunStatus, SiteState
from tasks.models import CodeLocation, CodeRole, Task, TaskParameter
from tests import factories
from tests.processing_support import ProcessWatch, log_text, pid_alive, run_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_pip")]

# The seed document's example, as written there.
SEED_SCRIPT = """\
import sys
import csv
from pathlib import Path

outPaths = []
input_file = sys.argv[1]

# this is where any new files should be placed
baseDir = Path(input_file).parent

# ...do something here with input...
# example write something into several files
with open(Path(input_file), 'r') as source:
  r = csv.reader(source)

  for x, row in enumerate(r):
    currentFile = Path(baseDir / f'test-{x}.txt')
    outPaths.append(str(currentFile))

    with open(currentFile, 'w') as fp:
      fp.write(str(row))

# print the new paths back
print(outPaths)
"""


def database(db):
    return factories.connection("database", name="sqlite-db", dialect=db.dialect, odbc=db.odbc, query_timeout=60)


def scripted_task(db, script: str, sql: str = "select 1 union all select 2", **fields) -> Task:
    task = factories.query_task(factories.project(), database(db), sql, **fields)
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=script)
    return task


def outbox(task: Task, tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    folder.mkdir()
    factories.destination(task, factories.connection("folder", name="outbox", folder=str(folder)))
    return folder


def test_seed_example_splits_the_query_into_two_delivered_files(sqlite_odbc, tmp_path):
    # No output name: the script's files keep their own names (SPEC §3.8).
    task = scripted_task(sqlite_odbc, SEED_SCRIPT, source_headers=False)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert sorted(p.name for p in box.iterdir()) == ["test-0.txt", "test-1.txt"]
    assert (box / "test-0.txt").read_text() == "['1']"
    assert (box / "test-1.txt").read_text() == "['2']"
    assert sorted(run.files.values_list("name", flat=True)) == ["test-0.txt", "test-1.txt"]
    assert [f.stored.read() for f in run.files.order_by("name")] == [b"['1']", b"['2']"]
    log = log_text(run, "processing")
    assert "Running python script.py orders.csv" in log
    assert "returned 2 file(s): test-0.txt, test-1.txt" in log
    # The printed list itself is a log line too: every stdout line is logged.
    assert "test-0.txt', '" in log


def test_other_last_line_lets_the_input_flow_on(sqlite_odbc, tmp_path):
    script = "import sys\nprint('checked', sys.argv[1:])\nprint('all good')\n"
    task = scripted_task(sqlite_odbc, script)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "orders.csv").read_text() == "1\n1\n2\n"
    assert "input files flow on unchanged" in log_text(run)


def test_python_literal_list_with_relative_path_is_taken(sqlite_odbc, tmp_path):
    # Single quotes make it a Python literal, not JSON; relative paths are relative to the run folder.
    script = "open('made.txt', 'w').write('made')\nprint(\"['made.txt']\")\n"
    task = scripted_task(sqlite_odbc, script)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [p.name for p in box.iterdir()] == ["made.txt"]


def test_a_path_outside_the_run_folder_fails_the_run_naming_it(sqlite_odbc, tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours")
    script = f"import json\nprint(json.dumps([{str(elsewhere)!r}]))\n".replace("'", '"')
    task = scripted_task(sqlite_odbc, script)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "processing"
    assert str(elsewhere) in run.error and "outside the run's folder" in run.error
    assert list(box.iterdir()) == [] and run.files.count() == 0


def test_a_symlink_leading_out_of_the_run_folder_is_rejected(sqlite_odbc, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    script = f"import os\nos.symlink({str(secret)!r}, 'link.txt')\nprint(['link.txt'])\n"
    run = run_task(scripted_task(sqlite_odbc, script))

    assert run.status == RunStatus.FAILED
    assert "“link.txt”" in run.error and "outside" in run.error


def test_a_missing_returned_file_fails_naming_it(sqlite_odbc):
    run = run_task(scripted_task(sqlite_odbc, "print(['never-written.csv'])\n"))

    assert run.status == RunStatus.FAILED
    assert "never-written.csv" in run.error and "does not exist" in run.error


def test_error_words_in_the_output_do_not_fail_the_run(sqlite_odbc):
    script = "import sys\nprint('Error: nothing really')\nprint('Traceback (most recent call last):', file=sys.stderr)\n"
    run = run_task(scripted_task(sqlite_odbc, script))

    assert run.status == RunStatus.SUCCEEDED, run.error
    lines = dict(run.log_lines.filter(stage="processing").values_list("message", "level"))
    assert lines["Error: nothing really"] == "info"
    assert lines["Traceback (most recent call last):"] == "warning"


def test_exit_status_one_fails_the_run_and_keeps_the_output(sqlite_odbc, tmp_path):
    script = "import sys\nprint('working on it')\nprint('bad input', file=sys.stderr)\nsys.exit(1)\n"
    task = scripted_task(sqlite_odbc, script)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "processing"
    assert "exited with status 1" in run.error
    log = log_text(run)
    assert "working on it" in log and "bad input" in log
    assert list(box.iterdir()) == []


def test_a_hanging_script_and_its_children_are_killed_at_the_timeout(sqlite_odbc, settings):
    # Inside the sandbox the child has another PID: the host finds it by a word in its command line.
    marker = f"courier-child-{uuid.uuid4().hex}"
    script = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', os.environ['marker']])\n"
        "print('waiting forever', flush=True)\n"
        "time.sleep(600)\n"
    )
    task = scripted_task(sqlite_odbc, script)
    TaskParameter.objects.create(task=task, key="@marker", value=marker)
    task.timeout_minutes = 1
    task.save()
    # A minute of two seconds: the run's deadline comes two seconds after its claim.
    settings.COURIER_TIMEOUT_MINUTE_SECONDS = 2
    with ProcessWatch(marker) as watch:
        run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "processing"
    assert run.error.startswith("Stopped by the task timeout of 1 minute in the processing stage: ")
    assert "every process it started were ended" in run.error
    assert "waiting forever" in log_text(run)
    assert watch.seen, "the child never started"
    assert not any(pid_alive(pid) for pid in watch.seen)


def test_the_script_sees_metadata_and_parameters_but_not_couriers_secrets(sqlite_odbc, settings, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://courier:pw@db/courier")
    monkeypatch.setenv("REDIS_URL", "redis://:pw@broker:6379/0")
    monkeypatch.setenv("COPY_OF_THE_KEY", f"prefix-{settings.SECRET_KEY}")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    script = (
        "import json, os, sys\n"
        "json.dump(dict(os.environ), open('env.json', 'w'))\n"
        "print('connection is', json.loads(os.environ['COURIER_CONNECTION'])['odbc'])\n"
        "print('token is', os.environ['api_token'])\n"
        "print(['env.json'])\n"
    )
    task = scripted_task(sqlite_odbc, script)
    TaskParameter.objects.create(task=task, key="@region", value="north")
    secret_param = TaskParameter(task=task, key="#api-token")
    secret_param.set_value("tok-Canary-12345", sensitive=True)
    secret_param.save()
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error

    env = json.loads(run.files.get().stored.read())
    for name in ("SECRET_KEY", "COURIER_SECRET_KEYS", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "COPY_OF_THE_KEY"):
        assert name not in env, name
    assert settings.SECRET_KEY not in json.dumps(env)
    assert env["HARMLESS_SETTING"] == "kept"
    assert (env["region"], env["api_token"]) == ("north", "tok-Canary-12345")
    meta = json.loads(env["COURIER_TASK"])
    assert (meta["id"], meta["name"], meta["run_id"], meta["attempt"]) == (task.pk, task.name, run.pk, 1)
    project = json.loads(env["COURIER_PROJECT"])
    assert (project["name"], project["owner"]["username"], project["run_id"]) == (task.project.name, "owner", run.pk)
    connection = json.loads(env["COURIER_CONNECTION"])
    assert (connection["kind"], connection["odbc"], connection["organization"]) == ("database", sqlite_odbc.odbc, "Acme")
    # The connection string and the sensitive parameter reach the script, never the log.
    log = log_text(run)
    assert "connection is ********" in log and "token is ********" in log
    assert "tok-Canary-12345" not in log and sqlite_odbc.odbc not in log
    assert Path(env["VIRTUAL_ENV"]).parent == Path(settings.COURIER_VENV_DIR)


def test_processing_switched_off_fails_clearly_and_delivers_nothing(sqlite_odbc, tmp_path):
    state = SiteState.get()
    state.processing_enabled = False
    state.save()
    task = scripted_task(sqlite_odbc, "print('should not run')\n")
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "processing" and run.permanent
    assert "switched off" in run.error
    assert "should not run" not in log_text(run)
    assert list(box.iterdir()) == [] and run.files.count() == 0


def test_a_python_only_task_runs_without_arguments(tmp_path):
    script = "import sys\nopen('made.txt', 'w').write(repr(sys.argv[1:]))\nprint(['made.txt'])\n"
    task = Task.objects.create(project=factories.project(), name="pyonly", source_kind="python")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=script)
    box = outbox(task, tmp_path)
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (box / "made.txt").read_text() == "[]"


def test_no_processing_script_means_no_processing_stage(sqlite_odbc):
    task = factories.query_task(factories.project(), database(sqlite_odbc), "select 1 as one")
    state = SiteState.get()
    state.processing_enabled = False  # irrelevant to a task without a script
    state.save()
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert not run.log_lines.filter(stage="processing").exists()


def test_workdir_is_the_scripts_working_directory(sqlite_odbc):
    script = "import json, os\nprint('cwd', os.getcwd() == json.loads(os.environ['COURIER_TASK'])['workdir'])\n"
    run = run_task(scripted_task(sqlite_odbc, script))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "cwd True" in log_text(run)

