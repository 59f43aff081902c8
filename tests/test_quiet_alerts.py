"""Quiet alerts on a real SMTP server (aiosmtpd): the failure mail after N final failures in a row, then "recovered".

The task fails transiently while its table is empty (tests/runhelpers.py
`flaky_task`) and retries once: each run's two attempts count as one final
failure. Mails are counted as they arrive on the server.
"""

from __future__ import annotations

import pytest

from runs.models import Run, RunStatus, Trigger
from runs.runner import execute
from runs.state import create_run
from tasks.models import Notification
from tests import factories
from tests.delivery_support import mail_through
from tests.runhelpers import add_item, flaky_task, source

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(smtp_server, settings):
    return mail_through(smtp_server, settings)


def one_run(task) -> Run:
    """A run and, if it fails, its retry, executed now: returns the last attempt."""
    run = create_run(task, Trigger.SCHEDULE)
    execute(run.pk)
    run.refresh_from_db()
    retry = run.retries.filter(status=RunStatus.RETRY_SCHEDULED).first()
    if retry is None:
        return run
    execute(retry.pk)
    retry.refresh_from_db()
    return retry


def subjects(smtp) -> list[str]:
    return [m["Subject"] for m in smtp.messages]


def test_the_failure_mail_waits_for_3_final_failures_and_a_success_sends_recovered(sqlite_odbc, smtp):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky", retry_max=1, retry_delay_minutes=0)
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test", after_failures=3, recovered=True)

    outcomes = [one_run(task) for _ in range(2)]
    assert [(r.status, r.attempt) for r in outcomes] == [(RunStatus.FAILED, 2)] * 2
    assert smtp.messages == []  # four failed attempts, two final failures: quiet
    assert "No failure mail: 2 run(s) in a row failed for good; the task mails after 3." in \
        "\n".join(outcomes[-1].log_lines.values_list("message", flat=True))

    third = one_run(task)
    assert len(smtp.messages) == 1 and "FAILED" in subjects(smtp)[0]
    assert smtp.envelopes[0].rcpt_tos == ["ops@example.test"]
    fourth = one_run(task)  # still failing: every further final failure mails too
    assert len(smtp.messages) == 2
    assert Run.objects.filter(failure_alerted=True).count() == 2 and third.pk != fourth.pk

    add_item(sqlite_odbc)
    recovered = one_run(task)
    assert recovered.status == RunStatus.SUCCEEDED and recovered.attempt == 1
    assert len(smtp.messages) == 3
    assert subjects(smtp)[2] == f"[Courier] {task} RECOVERED: run {recovered.pk} succeeded"
    body = smtp.messages[2].get_body(("plain",)).get_content()
    assert f"after the failure mail about run {fourth.pk}" in body

    one_run(task)  # a second success in a row: nothing to say
    assert len(smtp.messages) == 3


def test_without_recovered_mail_a_success_is_quiet_and_one_failure_mails_by_default(sqlite_odbc, smtp):
    task = flaky_task(factories.project(), source(sqlite_odbc), "flaky")
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test")

    one_run(task)
    assert len(smtp.messages) == 1  # the default: every final failure mails, as before
    add_item(sqlite_odbc)
    one_run(task)
    assert len(smtp.messages) == 1
