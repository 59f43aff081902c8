"""The row guard against a real SQLite source and a real OpenSSH server: fail, hold or warn, with the numbers in the log.

A held run keeps its files in Courier's file storage and delivers nothing;
its owner gets a mail (aiosmtpd); the Task Details page shows it with
Release and Discard buttons. Release delivers the stored files exactly once
(the worker is played by the test, as in tests/runhelpers.py `drain`);
discard removes them.
"""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse

from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunStatus
from runs.pipeline import guard
from runs.runner import execute
from tasks.models import GuardAction, Task
from tests import factories
from tests.delivery_support import log_text, mail_through, run_task
from tests.runhelpers import drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(smtp_server, settings):
    return mail_through(smtp_server, settings)

HELD_REPORT = ("Row guard: 4 rows; median of the last 5 successful runs 10 (10, 10, 10, 10, 10): this run is 60 % below it, "
               "50 % allowed either way. Broken: 60 % below the median of the last 5 successful runs (allowed 50 %). "
               "Action: the files are made and held; nothing is delivered until someone releases them.")


def set_rows(db, count: int) -> None:
    cnxn = pyodbc.connect(db.odbc)
    cnxn.execute("CREATE TABLE IF NOT EXISTS items (n INTEGER)")
    cnxn.execute("DELETE FROM items")
    for n in range(count):
        cnxn.execute("INSERT INTO items VALUES (?)", n)
    cnxn.commit()
    cnxn.close()


def items_task(db, owner=None, **guard_fields) -> Task:
    set_rows(db, 0)
    source = factories.connection("database", name="source", dialect="sqlite", odbc=db.odbc)
    project = factories.project(owner=owner) if owner else factories.project()
    return factories.query_task(project, source, "select n from items order by n", name="items", output_name="items.csv", **guard_fields)


def sftp_drop(task: Task, sshd, tmp_path: Path) -> Path:
    disk = sshd.root / f"guard-{tmp_path.name[-20:]}"
    disk.mkdir()
    disk.chmod(0o777)
    factories.destination(task, factories.sftp_connection(sshd, folder=str(disk)), if_exists="overwrite")
    return disk


def five_runs_of_ten_rows(db, task: Task) -> None:
    set_rows(db, 10)
    for _ in range(5):
        run = run_task(task)
        assert (run.status, run.rows) == (RunStatus.SUCCEEDED, 10), run.error


@pytest.fixture
def held(sqlite_odbc, sshd, tmp_path, smtp, staff_runner):
    """A task whose sixth run, 60 % smaller than the median of the five before it, is held."""
    staff_runner.email = "runner@example.test"
    staff_runner.save()
    task = items_task(sqlite_odbc, owner=staff_runner, guard_median_runs=5, guard_median_percent=50, guard_action=GuardAction.HOLD)
    disk = sftp_drop(task, sshd, tmp_path)
    five_runs_of_ten_rows(sqlite_odbc, task)
    (disk / "items.csv").unlink()  # what the five delivered; from here on, nothing may arrive
    smtp.messages.clear()
    set_rows(sqlite_odbc, 4)
    run = run_task(task)
    return task, run, disk


def test_a_run_60_percent_below_the_median_of_the_last_5_is_held_and_nothing_reaches_sshd(held, smtp):
    task, run, disk = held

    assert run.status == RunStatus.HELD and run.rows == 4
    assert run.guard_report == HELD_REPORT
    assert run.log_lines.filter(stage="guard", level="warning", message=HELD_REPORT).exists()
    assert list(disk.iterdir()) == []
    assert not Delivery.objects.filter(run=run, kind=DeliveryKind.UPLOAD).exists()
    record = run.files.get()
    assert Path(record.stored.path).read_bytes() == b"n\n0\n1\n2\n3\n"
    # The owner is told, with the numbers and how to decide.
    mail = smtp.messages[-1]
    assert smtp.envelopes[-1].rcpt_tos == ["runner@example.test"]
    assert "HELD by its row guard" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "60 % below" in text and f"manage.py held_runs --release {run.pk}" in text
    assert f"https://courier.example.test/admin/courier/tasks/{task.pk}/" in text


def test_release_from_task_details_delivers_the_held_files_exactly_once(held, client, staff_runner):
    task, run, disk = held
    client.force_login(staff_runner)
    page = client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()
    assert f"Release run {run.pk}" in page and f"Discard run {run.pk}" in page and "60 % below" in page

    url = reverse("courier:task_action", args=[task.pk, "release"])
    response = client.post(url, {"run": run.pk}, follow=True)
    assert f"Released the held files of run {run.pk}" in response.content.decode()
    again = client.post(url, {"run": run.pk}, follow=True)  # a double click, or a second person
    assert f"Run {run.pk} of {task} is not held (any more)" in again.content.decode()

    assert [r.pk for r in drain()] == [run.pk]  # the worker: the release was queued once
    assert execute(run.pk) is None  # a second delivery of the queue message changes nothing
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.decided_by == staff_runner
    assert (disk / "items.csv").read_bytes() == b"n\n0\n1\n2\n3\n"
    uploads = Delivery.objects.filter(run=run, kind=DeliveryKind.UPLOAD)
    assert [(d.status, d.verified) for d in uploads] == [(DeliveryStatus.SENT, True)]
    assert "the source is not run again" in log_text(run)
    assert LogEntry.objects.filter(object_id=str(task.pk), change_message__contains=f"Released the held files of run {run.pk}").count() == 1


def test_discard_by_command_removes_the_stored_files_and_delivers_nothing(held, capsys):
    task, run, disk = held
    stored = Path(run.files.get().stored.path)
    assert stored.exists()
    call_command("held_runs", str(task))
    assert capsys.readouterr().out.startswith(f"{run.pk}\t{task}\t")

    call_command("held_runs", "--discard", str(run.pk))

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and "discarded" in run.error
    assert not stored.exists() and not run.files.exists()
    assert list(disk.iterdir()) == []
    assert f"Discarded run {run.pk}" in capsys.readouterr().out
    assert "Removed the held file items.csv (10 bytes" in log_text(run)
    # A discarded run cannot be released any more.
    with pytest.raises(Exception, match="not held"):
        call_command("held_runs", "--release", str(run.pk))


def test_zero_rows_can_be_held_too(sqlite_odbc, sshd, tmp_path, smtp):
    task = items_task(sqlite_odbc, source_fail_on_empty=True, guard_action=GuardAction.HOLD)
    disk = sftp_drop(task, sshd, tmp_path)

    run = run_task(task)

    assert run.status == RunStatus.HELD and run.rows == 0
    assert "Broken: the result has no rows." in run.guard_report
    assert list(disk.iterdir()) == []


def test_too_many_rows_fails_the_run_before_any_file_is_made(sqlite_odbc, sshd, tmp_path):
    task = items_task(sqlite_odbc, guard_max_rows=3, retry_max=1)
    disk = sftp_drop(task, sshd, tmp_path)
    set_rows(sqlite_odbc, 4)

    run = run_task(task)

    assert run.status == RunStatus.FAILED and run.error_stage == "guard" and not run.permanent
    assert run.error == "Row guard: 4 rows; at most 3 rows wanted. Broken: more than 3 rows. Action: the run fails."
    assert not run.files.exists() and list(disk.iterdir()) == []
    assert run.retries.filter(status=RunStatus.RETRY_SCHEDULED).exists()  # the data may be right by then


def test_a_warning_guard_logs_the_numbers_and_delivers(sqlite_odbc, sshd, tmp_path):
    task = items_task(sqlite_odbc, guard_min_rows=5, guard_action=GuardAction.WARN)
    disk = sftp_drop(task, sshd, tmp_path)
    set_rows(sqlite_odbc, 4)

    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.log_lines.filter(stage="guard", level="warning",
                                message__startswith="Row guard: 4 rows; at least 5 rows wanted. Broken: fewer than 5 rows.").exists()
    assert (disk / "items.csv").exists()


@pytest.mark.parametrize(("rows", "broken"), [(10, False), (15, False), (16, True), (4, True), (5, False)])
def test_the_median_is_compared_both_ways(rows, broken):
    task = Task(guard_median_runs=5, guard_median_percent=50)
    verdict = guard.judge(task, rows, [10, 9, 11, 10, 30])
    assert verdict.passed is not broken
    direction = "above" if rows > 10 else "below"
    assert f"this run is {abs(rows - 10) * 10} % {direction} it" in verdict.report(GuardAction.FAIL) or rows == 10


def test_the_median_waits_for_enough_successful_runs(sqlite_odbc):
    task = items_task(sqlite_odbc, guard_median_runs=3, guard_median_percent=10)
    set_rows(sqlite_odbc, 7)
    first = run_task(task)
    assert first.status == RunStatus.SUCCEEDED
    assert "median not compared: 0 of the 3 successful runs it needs so far. Passed." in first.guard_report
    assert Run.objects.filter(task=task).count() == 1
