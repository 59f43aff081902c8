"""Every run state transition, the atomic claim, and run_task's command-line contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError
from django.utils import timezone

from runs.models import Run, RunStatus, Trigger
from runs.runner import execute
from runs.services import ServiceError, cancel_retry
from runs.state import claim, create_once, create_run
from tasks.models import CodeLocation
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(sqlite_odbc, tmp_path):
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    task = factories.query_task(factories.project(), source, "select 1 as one, 'x' as two", output_name="states.csv")
    factories.destination(task, factories.connection("folder", folder=str(outbox)))
    return task


def test_queued_run_goes_running_then_succeeded(task):
    run = create_run(task, "manual")
    assert run.status == RunStatus.QUEUED and run.started_at is None
    seen = []
    execute(run.pk, echo=lambda line: seen.append(Run.objects.get(pk=run.pk).status))
    run.refresh_from_db()
    assert "running" in seen
    assert run.status == RunStatus.SUCCEEDED
    assert run.started_at <= run.finished_at and run.worker
    assert run.rows == 1


def test_queued_run_goes_running_then_failed(task):
    code = task.code_locations.get()
    code.text = "select broken syntax from"
    code.save()
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error_stage == "source" and run.permanent
    assert run.finished_at is not None


def test_a_claimed_run_cannot_be_claimed_again(task):
    run = create_run(task, "manual")
    assert claim(run.pk) is not None
    # A second delivery of the same queue message finds it running: a no-op.
    assert claim(run.pk) is None
    assert execute(run.pk) is None
    assert Run.objects.get(pk=run.pk).log_lines.count() == 0


def test_a_finished_run_is_not_run_again(task):
    run = create_run(task, "manual")
    execute(run.pk)
    lines = run.log_lines.count()
    assert execute(run.pk) is None
    assert run.log_lines.count() == lines


def test_cancelled_run_never_runs(task):
    """A waiting run is cancelled the one way people can, Cancel Retry; its queue message may still arrive."""
    failed = create_run(task, "manual")
    task.retry_max, task.retry_on_every_failure = 1, True
    task.save(update_fields=["retry_max", "retry_on_every_failure"])
    CodeLocation.objects.filter(task=task).update(text="select * from no_such_table")
    execute(failed.pk)
    pending = Run.objects.get(retry_of=failed)
    assert pending.status == RunStatus.RETRY_SCHEDULED
    assert cancel_retry(task).pk == pending.pk
    pending.refresh_from_db()
    assert pending.status == RunStatus.CANCELLED and pending.finished_at
    assert execute(pending.pk) is None
    assert Run.objects.get(pk=pending.pk).status == RunStatus.CANCELLED


def test_a_running_run_cannot_be_cancelled(task):
    run = create_run(task, "manual")
    claim(run.pk)
    with pytest.raises(ServiceError, match=f"is running \\(run {run.pk}\\)"):
        cancel_retry(task)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_run_task_wait_json_prints_the_contract(task, capsys):
    call_command("run_task", str(task), "--wait", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and out["task"] == str(task) and out["attempt"] == 1 and out["rows"] == 1
    assert out["error"] is None
    assert out["files"][0]["name"] == "states.csv" and out["files"][0]["rows"] == 1
    assert set(out["files"][0]) == {"name", "size", "rows", "md5", "sha256"}
    assert out["deliveries"][0]["status"] == "sent"


def test_run_task_exit_codes(task):
    with pytest.raises(CommandError) as missing:
        call_command("run_task", "Nightly/nope", "--wait")
    assert missing.value.returncode == 2 and "No task “Nightly/nope”" in str(missing.value)
    code = task.code_locations.get()
    code.text = "select * from nowhere"
    code.save()
    with pytest.raises(CommandError) as failed:
        call_command("run_task", str(task), "--wait")
    assert failed.value.returncode == 1 and "failed" in str(failed.value)


def test_run_task_without_wait_queues_a_run(task, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("run_task", str(task.pk))
    run = Run.objects.get()
    assert run.status == RunStatus.QUEUED and run.trigger == "manual"
    assert len(callbacks) == 1


def test_run_task_wait_obeys_the_one_active_run_rule(task, capsys):
    active = create_run(task, "manual")
    claim(active.pk)  # a worker has it
    outbox = task.destinations.get().connection.folder
    with pytest.raises(CommandError) as refused:
        call_command("run_task", str(task), "--wait", "--json")
    skipped = Run.objects.exclude(pk=active.pk).get()
    # Exit 1 with one line that names the active run (SPEC §13); the JSON reports the skipped run.
    assert refused.value.returncode == 1
    assert str(refused.value) == (
        f"Run {skipped.pk} of {task} skipped: previous run still active (run {active.pk} of {task}, running)."
    )
    out = json.loads(capsys.readouterr().out)
    assert (out["run"], out["status"], out["rows"], out["files"]) == (skipped.pk, "skipped", None, [])
    assert (skipped.status, skipped.trigger, skipped.started_at) == (RunStatus.SKIPPED, "manual", None)
    # Nothing ran here: the active run is untouched and nothing was delivered.
    assert Run.objects.get(pk=active.pk).status == RunStatus.RUNNING
    assert active.log_lines.count() == 0 and not any(Path(outbox).iterdir())


def test_a_fire_time_is_recorded_once_and_any_other_refusal_is_an_error(task):
    at = timezone.now().replace(microsecond=0)
    first = create_once(task, Trigger.SCHEDULE, intended_at=at)
    assert first is not None and create_once(task, Trigger.SCHEDULE, intended_at=at) is None  # the same fire time
    with pytest.raises(IntegrityError):  # a refusal that is not the fire-time constraint is not "already recorded"
        create_once(task, Trigger.SCHEDULE, intended_at=at.replace(year=at.year - 1), status=None)
    assert list(task.runs.values_list("pk", flat=True)) == [first.pk]
