"""Task Details: the summary, the controls (POST + CSRF + admin log), the previews, the live log endpoint."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from runs import jobs, retries
from runs.models import Run, RunFile, RunLog, RunStatus, Trigger
from runs.state import create_run
from tasks.models import Task, TaskParameter
from tests import factories
from tests.pages_support import DB_SECRET, SFTP_SECRET, database_connection, sftp_connection

pytestmark = pytest.mark.django_db

SENSITIVE = "hunter2-Very-Secret"


@pytest.fixture
def task(staff_runner):
    project = factories.project("Billing", owner=staff_runner, cron="30 5 * * 1-5")
    mssql = factories.connection("database", name="ledger", dialect="mssql", odbc=f"Driver=X;Server=s;{DB_SECRET};")
    made = factories.query_task(project, mssql, "USE ledger\nGO\nDECLARE @day date = getdate()\nDECLARE @pw varchar(40) = ''\n"
                                                "SELECT * FROM dbo.invoices WHERE day = @day", name="invoices",
                                output_name="invoices_%Y%m%d-1", retry_max=2)
    TaskParameter.objects.create(task=made, key="@day", value="'parse(%Y-%m-%d)'")
    param = TaskParameter(task=made, key="@pw")
    param.set_value(f"'{SENSITIVE}'", sensitive=True)
    param.save()
    factories.destination(made, sftp_connection(), folder="in")
    return made


def detail(client, task) -> str:
    response = client.get(reverse("courier:task_detail", args=[task.pk]))
    assert response.status_code == 200
    return response.content.decode()


def post(client, task, action):
    return client.post(reverse("courier:task_action", args=[task.pk, action]))


def test_the_summary_says_every_setting_in_words_and_never_a_secret(client, staff_runner, task):
    client.force_login(staff_runner)
    html = detail(client, task)
    for words in ("Database query", "Acme/ledger", "Up to 2 retries", "SFTP", "Acme/drop → in", "if the file exists: fail",
                  "Column names become the header row", "owner runner", "No email."):
        assert words in html, words
    for secret in (DB_SECRET, SFTP_SECRET, SENSITIVE):
        assert secret not in html


def test_the_sql_preview_is_prepared_with_parameters_and_masked(client, staff_runner, task):
    client.force_login(staff_runner)
    html = detail(client, task)
    sql = html.split('id="sql-preview">')[1].split("</pre>")[0]
    today = timezone.now().strftime("%Y-%m-%d")
    assert sql.startswith("SET NOCOUNT ON;")
    assert "USE ledger" not in sql and "GO" not in sql.split("\n")
    assert f"DECLARE @day date = &#x27;{today}&#x27;" in sql
    assert "DECLARE @pw varchar(40) = ********" in sql
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%Y%m%d")
    assert f"<code>invoices_{yesterday}.csv</code>" in html


def test_run_now_is_a_post_that_queues_a_manual_run_and_is_logged(client, staff_runner, task):
    client.force_login(staff_runner)
    assert client.get(reverse("courier:task_action", args=[task.pk, "run"])).status_code == 405
    response = post(client, task, "run")
    assert response.status_code == 302 and response["Location"] == reverse("courier:task_detail", args=[task.pk])
    run = task.runs.get()
    assert (run.trigger, run.status, run.started_by) == (Trigger.MANUAL, RunStatus.QUEUED, staff_runner)
    entry = LogEntry.objects.get(object_id=str(task.pk))
    assert (entry.user, entry.get_change_message()) == (staff_runner, f"Started run {run.pk} by hand.")
    html = detail(client, task)
    assert f"Started run {run.pk} by hand." in html.split('id="action-history"')[1]


def test_controls_need_csrf(staff_runner, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_runner)
    assert post(client, task, "run").status_code == 403
    assert not task.runs.exists()


def test_a_viewer_sees_disabled_controls_and_cannot_post_them(client, staff_viewer, task):
    client.force_login(staff_viewer)
    html = detail(client, task)
    controls = html.split('id="controls"')[1].split('id="settings"')[0]
    assert controls.count("disabled") >= 5
    assert 'class="changelink"' not in html.split('class="object-tools"')[1].split("</ul>")[0]
    for action in ("run", "disable", "reschedule", "duplicate", "cancel-retry"):
        assert post(client, task, action).status_code == 403, action
    assert not task.runs.exists()
    assert Task.objects.filter(name__endswith="(copy)").count() == 0


def test_enable_and_disable(client, staff_runner, task):
    client.force_login(staff_runner)
    post(client, task, "disable")
    task.refresh_from_db()
    assert task.enabled is False
    assert '>Enable</button>' in detail(client, task)
    post(client, task, "enable")
    task.refresh_from_db()
    assert task.enabled is True
    assert [e.get_change_message() for e in LogEntry.objects.order_by("id")] == ["Disabled.", "Enabled."]


def test_duplicate_makes_a_disabled_copy_with_its_parameters(client, staff_runner, task):
    client.force_login(staff_runner)
    response = post(client, task, "duplicate")
    copy = Task.objects.get(name="invoices (copy)")
    assert response["Location"] == reverse("courier:task_detail", args=[copy.pk])
    assert copy.enabled is False and copy.project == task.project
    assert sorted(p.key for p in copy.parameters.all()) == ["@day", "@pw"]
    assert not copy.runs.exists()
    assert LogEntry.objects.filter(object_id=str(copy.pk), action_flag=1).exists()


def _failed_with_retry(task) -> Run:
    failed = create_run(task, Trigger.SCHEDULE)
    Run.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED, started_at=timezone.now(), finished_at=timezone.now())
    failed.refresh_from_db()
    return retries.schedule_retry(failed)


def test_cancel_retry_cancels_the_pending_retry(client, staff_runner, task):
    retry = _failed_with_retry(task)
    client.force_login(staff_runner)
    html = detail(client, task)
    assert '>Cancel retry</button>' in html and 'disabled title="No retry is scheduled"' not in html
    post(client, task, "cancel-retry")
    retry.refresh_from_db()
    assert retry.status == RunStatus.CANCELLED
    assert "Cancelled the retry" in LogEntry.objects.get().get_change_message()


def test_cancel_retry_is_disabled_and_refused_while_the_task_runs(client, staff_runner, task):
    retry = _failed_with_retry(task)
    Run.objects.filter(pk=retry.pk).update(status=RunStatus.RUNNING)
    pending = Run.objects.create(task=task, trigger=Trigger.RETRY, attempt=3, intended_at=timezone.now(),
                                 due_at=timezone.now(), status=RunStatus.RETRY_SCHEDULED)
    client.force_login(staff_runner)
    html = detail(client, task)
    assert 'disabled title="Not available while the task is running"' in html
    response = post(client, task, "cancel-retry")
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == RunStatus.RETRY_SCHEDULED
    assert "is running" in detail(client, task)  # the refusal is shown as a message


def test_reschedule_rebuilds_the_project_schedules(client, staff_runner, task):
    from django_q.models import Schedule

    Schedule.objects.all().delete()
    client.force_login(staff_runner)
    post(client, task, "reschedule")
    assert Schedule.objects.filter(name=f"courier:project:{task.project_id}:cron").exists()
    assert "Rebuilt the schedules" in LogEntry.objects.get().get_change_message()


def test_the_log_endpoint_returns_the_lines_after_an_id(client, staff_viewer, task):
    run = create_run(task, Trigger.MANUAL)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    lines = [RunLog.objects.create(run=run, stage="source", message=f"line {i}") for i in range(3)]
    client.force_login(staff_viewer)
    url = reverse("courier:run_log", args=[run.pk])
    data = client.get(url, {"after": lines[0].pk}).json()
    assert [line["message"] for line in data["lines"]] == ["line 1", "line 2"]
    assert (data["status"], data["finished"], data["more"]) == ("running", False, False)
    assert client.get(url, {"after": lines[-1].pk}).json()["lines"] == []
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert client.get(url, {"after": lines[-1].pk}).json()["finished"] is True
    assert client.get(url, {"after": "x"}).status_code == 400


def test_the_page_follows_the_latest_run_in_its_live_log(client, staff_viewer, task):
    create_run(task, Trigger.MANUAL)
    latest = create_run(task, Trigger.MANUAL)
    client.force_login(staff_viewer)
    html = detail(client, task)
    assert f'data-url="{reverse("courier:run_log", args=[latest.pk])}"' in html


def test_delete_asks_for_confirmation_then_deletes(client, superuser, task):
    client.force_login(superuser)
    page = client.get(reverse("courier:task_delete", args=[task.pk]))
    assert "Are you sure" in page.content.decode()
    assert Task.objects.filter(pk=task.pk).exists()
    response = client.post(reverse("courier:task_delete", args=[task.pk]))
    assert response["Location"] == reverse("courier:project_detail", args=[task.project_id])
    assert not Task.objects.filter(pk=task.pk).exists()
    assert LogEntry.objects.get(object_id=str(task.pk)).is_deletion()


def test_database_connection_secret_is_not_in_the_edit_form_either(client, superuser, task):
    database_connection()
    client.force_login(superuser)
    html = client.get(reverse("courier:task_edit", args=[task.pk])).content.decode()
    for secret in (DB_SECRET, SFTP_SECRET, SENSITIVE):
        assert secret not in html


def test_file_history_downloads_and_resends_a_stored_file(client, staff_runner, task, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    task.destinations.all().delete()
    factories.destination(task, factories.connection("folder", name="outbox", folder=str(outbox)))
    run = create_run(task, Trigger.MANUAL)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    content = b"id,name\n1,Ann\n"
    record = RunFile(run=run, name="invoices.csv", size=len(content), rows=1, md5=hashlib.md5(content).hexdigest(),
                     sha256=hashlib.sha256(content).hexdigest())
    record.stored.save("invoices.csv", ContentFile(content), save=True)
    client.force_login(staff_runner)
    files = detail(client, task).split('id="files"')[1].split('id="action-history"')[0]
    download = reverse("courier:runfile_download", args=[record.pk])
    assert f'href="{download}"' in files and ">Resend</button>" in files
    assert b"".join(client.get(download).streaming_content) == content
    response = client.post(reverse("courier:file_resend", args=[record.pk]), follow=True)
    page = response.content.decode()
    assert "Resent invoices.csv: queued for Local folder Acme/outbox (base folder)." in page and "Its progress shows under Files" in page
    assert not (outbox / "invoices.csv").exists()  # the page only queued it
    files = page.split('id="files"')[1].split('id="action-history"')[0]
    assert '<span class="status status-queued">queued</span> Local folder Acme/outbox' in files
    # A worker takes the queued resend (runs.jobs.send_resend): the file arrives, and the page says so.
    [queued] = record.deliveries.filter(resent_by=staff_runner)
    assert jobs.send_resend(queued.pk) == "sent"
    assert (outbox / "invoices.csv").read_bytes() == content
    files = detail(client, task).split('id="files"')[1].split('id="action-history"')[0]
    assert '<span class="status status-sent">sent</span> Local folder Acme/outbox' in files and "(runner, " in files
