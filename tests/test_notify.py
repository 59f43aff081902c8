"""Success and failure mails through a real SMTP server (aiosmtpd): read back from the wire and parsed."""

from __future__ import annotations

import pytest
from django.utils import timezone

from projects.models import ProjectParameter
from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunStatus, Trigger
from runs.notify import send_failure_mail, split_recipients
from runs.pipeline.log import RunLogger
from tasks.models import Notification
from tests.delivery_support import ORDERS_CSV, folder_destination, log_text, mail_through, orders_task, run_task
from tests.servers_common import free_port

pytestmark = pytest.mark.django_db

RECIPIENTS = "ops@example.test; boss@example.test,\n5551234567@vtext.com"


@pytest.fixture
def smtp(smtp_server, settings):
    return mail_through(smtp_server, settings)


def by_recipient(server) -> dict[str, object]:
    return {",".join(sorted(env.rcpt_tos)): msg for env, msg in zip(server.envelopes, server.messages, strict=True)}


def parts(message) -> dict[str, object]:
    return {part.get_content_type(): part for part in message.walk() if not part.is_multipart()}


def test_recipients_are_split_on_semicolons_commas_and_new_lines():
    found = split_recipients("a@x.test; b@y.test,\nc@z.test\n\n555-123-4567@vtext.com , not-an-address; A@x.test; Dee <d@w.test>")
    assert found.emails == ["a@x.test", "b@y.test", "c@z.test", "d@w.test"]
    assert found.phones == ["555-123-4567@vtext.com"]
    assert found.invalid == ["not-an-address"]


def test_success_mail_attaches_embeds_and_texts_a_phone_only_the_message(smtp, sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, output_name="orders_client_%Y.csv")
    ProjectParameter.objects.create(project=task.project, key="client", value="acme")
    folder_destination(task, tmp_path / "out")
    Notification.objects.create(task=task, event="success", recipients=RECIPIENTS, subject="Orders for client %Y",
                                message="The client orders are out.", attach=True, embed=True)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    year = f"{run.intended_at:%Y}"

    mails = by_recipient(smtp)
    assert set(mails) == {"boss@example.test,ops@example.test", "5551234567@vtext.com"}
    full = mails["boss@example.test,ops@example.test"]
    assert full["Subject"] == f"Orders for acme {year}"
    assert full["From"] == "courier@example.test"
    text, html = parts(full)["text/plain"].get_content(), parts(full)["text/html"].get_content()
    assert text.startswith("The acme orders are out.\r\n") and f"orders_acme_{year}.csv" in text
    assert "<td>Bob, Jr.</td>" in html and "<td>has &quot;quotes&quot;</td>" in html and "<th>customer</th>" in html
    attachment = next(p for p in full.iter_attachments())
    assert attachment.get_filename() == f"orders_acme_{year}.csv"
    assert attachment.get_payload(decode=True) == ORDERS_CSV
    assert f"https://courier.example.test/admin/runs/run/{run.pk}/change/" in text

    sms = mails["5551234567@vtext.com"]
    assert not sms.is_multipart() and sms.get_content_type() == "text/plain"
    assert sms.get_content().strip() == "The acme orders are out."  # parameters filled in, nothing else
    assert not sms["Subject"]
    emails = Delivery.objects.filter(run=run, kind=DeliveryKind.EMAIL)
    assert sorted(emails.values_list("status", flat=True)) == [DeliveryStatus.SENT] * 2
    assert all(d.at for d in emails)


def test_an_embedded_table_is_cut_at_the_size_cap_and_says_so(smtp, sqlite_odbc, settings):
    settings.COURIER_EMAIL_EMBED_LIMIT = 55  # characters of cell text: rows 1 and 2 fit, row 3 does not
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    Notification.objects.create(task=task, event="success", recipients="ops@example.test", embed=True)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    mail = smtp.messages[0]
    html, text = parts(mail)["text/html"].get_content(), parts(mail)["text/plain"].get_content()
    assert "<td>Ann</td>" in html and "Zoë" not in html
    assert "The table was cut at the size limit: it shows the first 2 rows of 3." in " ".join(html.split())
    assert "cut at the size limit: the first 2 rows of 3" in text
    assert not list(mail.iter_attachments())
    assert mail["Subject"] == "[Courier] Nightly/orders succeeded (3 rows)"


def test_the_failure_mail_says_what_failed(smtp, sqlite_odbc):
    task = orders_task(sqlite_odbc, sql="select * from missing_table", retry_max=2)
    task.project.owner.first_name, task.project.owner.last_name = "Olive", "Owner"
    task.project.owner.save()
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test\n5551234567@vtext.com",
                                message="")
    run = run_task(task)
    assert run.status == RunStatus.FAILED and run.permanent

    mails = by_recipient(smtp)
    mail = mails["ops@example.test"]
    assert mail["Subject"] == "[Courier] Nightly/orders FAILED at the source stage (attempt 1 of 3)"
    text = parts(mail)["text/plain"].get_content()
    for expected in ("Project:  Nightly", "Task:     orders", "Owner:    Olive Owner", "attempt 1 of 3",
                     "FAILED at the source stage", "missing_table", "Retry: none follows: the failure is permanent",
                     f"https://courier.example.test/admin/runs/run/{run.pk}/change/", "Last log lines:", "[source]"):
        assert expected in text, expected
    html = parts(mail)["text/html"].get_content()
    assert "missing_table" in html and f"/admin/runs/run/{run.pk}/change/" in html
    sms = mails["5551234567@vtext.com"]
    assert not sms.is_multipart()
    assert sms.get_content().strip() == "Courier: Nightly/orders failed at the source stage (attempt 1 of 3)."


def test_no_failure_mail_while_a_retry_follows(smtp, sqlite_odbc):
    task = orders_task(sqlite_odbc, sql="select * from missing_table", retry_max=3)
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test")
    run = Run.objects.create(task=task, trigger=Trigger.MANUAL, status=RunStatus.FAILED, intended_at=timezone.now(),
                             due_at=timezone.now(), error_stage="delivery", error="Socket is closed.")
    Run.objects.create(task=task, trigger=Trigger.RETRY, status=RunStatus.RETRY_SCHEDULED, retry_of=run, attempt=2,
                       intended_at=run.intended_at, due_at=timezone.now() + timezone.timedelta(minutes=5))
    log = RunLogger(run)
    send_failure_mail(run, log)
    assert smtp.messages == []
    assert "No failure mail: attempt 2 follows at" in log_text(run)

    send_failure_mail(run, log, even_if_retrying=True)
    text = parts(smtp.messages[0])["text/plain"].get_content()
    assert "Retry: attempt 2 is scheduled for" in text and "Socket is closed." in text


def test_sensitive_values_are_masked_in_mails(smtp, sqlite_odbc):
    task = orders_task(sqlite_odbc)
    secret = ProjectParameter(project=task.project, key="apikey")
    secret.set_value("Sup3r-Secret-Value", True)
    secret.save()
    Notification.objects.create(task=task, event="success", recipients="ops@example.test", subject="Key apikey",
                                message="Used apikey today.")
    run_task(task)
    mail = smtp.messages[0]
    assert mail["Subject"] == "Key ********"
    assert "Sup3r-Secret-Value" not in mail.as_string()


def test_an_empty_output_sends_no_success_mail_when_so_set(smtp, sqlite_odbc):
    task = orders_task(sqlite_odbc, sql="select * from orders where id < 0")
    Notification.objects.create(task=task, event="success", recipients="ops@example.test", skip_empty=True, attach=True)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED
    assert smtp.messages == []
    assert "The output is empty and the success mail is set not to be sent" in log_text(run)


def test_a_mail_server_that_is_down_costs_the_mail_not_the_run(sqlite_odbc, tmp_path, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 5
    task = orders_task(sqlite_odbc)
    folder_destination(task, tmp_path / "out")
    Notification.objects.create(task=task, event="success", recipients="ops@example.test")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED
    mail = Delivery.objects.get(run=run, kind=DeliveryKind.EMAIL)
    assert mail.status == DeliveryStatus.FAILED and "refused" in mail.error.lower()
    assert run.log_lines.filter(stage="notify", level="error").exists()
    assert (tmp_path / "out" / "orders.csv").read_bytes() == ORDERS_CSV


def test_a_file_over_the_attachment_limit_is_named_not_attached_and_a_phone_gets_the_default_text(smtp, sqlite_odbc, settings):
    settings.COURIER_EMAIL_ATTACH_LIMIT = 10
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    Notification.objects.create(task=task, event="success", recipients="ops@example.test, +15551234567@sms.example.test",
                                attach=True)
    run_task(task)
    mails = by_recipient(smtp)
    full = mails["ops@example.test"]
    assert not list(full.iter_attachments())
    assert "orders.csv is not attached: over the 10\xa0bytes attachment limit." in parts(full)["text/plain"].get_content()
    sms = mails["+15551234567@sms.example.test"]
    assert sms.get_content().strip() == "Courier: Nightly/orders succeeded, 3 rows."


def test_with_the_real_retry_policy_only_the_last_attempt_mails(smtp, sqlite_odbc):
    from runs.runner import execute

    task = orders_task(sqlite_odbc, sql="select * from orders where id < 0", source_fail_on_empty=True, retry_max=1)
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test")
    first = run_task(task)
    assert first.status == RunStatus.FAILED and not first.permanent
    assert smtp.messages == []
    assert "No failure mail: attempt 2 follows at" in log_text(first)

    second = execute(first.retries.get().pk)
    assert second.status == RunStatus.FAILED and second.attempt == 2
    text = parts(smtp.messages[0])["text/plain"].get_content()
    assert "attempt 2 of 2" in text and "Retry: none follows: all 2 attempts are used." in text
