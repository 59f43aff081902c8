"""Late alerts: one mail when a task has not succeeded by its expected time, one when it recovers.

On a fixed clock around the start of summer time in Europe/Amsterdam (Sunday
2026-03-29, 02:00 → 03:00): a task "should have succeeded by 07:00" is late
at 06:00 UTC on Friday (CET) and at 05:00 UTC on Sunday (CEST). Its project
fires Sunday to Friday at 06:00; on Saturday there is nothing to be late
for. The task never starts: its project's schedule is deleted, and the
watch (runs/watch.py) alone notices. Mails go through a real SMTP server
(aiosmtpd).
"""

from __future__ import annotations

from datetime import datetime, time
from datetime import timezone as dt_timezone

import pytest
from django_q.models import Schedule

from projects import scheduling
from runs import lateness, state, watch
from runs.models import LateAlert, Run, RunStatus, Trigger
from runs.runner import execute
from tasks.models import Notification
from tests import factories
from tests.delivery_support import mail_through
from tests.runhelpers import ok_task, source

pytestmark = pytest.mark.django_db


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=dt_timezone.utc)


@pytest.fixture
def smtp(smtp_server, settings):
    return mail_through(smtp_server, settings)


@pytest.fixture
def task(sqlite_odbc, django_user_model):
    owner = django_user_model.objects.create(username="olga", email="olga@example.test")
    project = factories.project(name="Daily", owner=owner, cron="0 6 * * 0-5", timezone="Europe/Amsterdam")
    task = ok_task(project, source(sqlite_odbc), "orders", expected_by=time(7, 0))
    Notification.objects.create(task=task, event="failure", recipients="ops@example.test")
    # Its trigger is gone from the scheduler: the task will never start on its own.
    Schedule.objects.filter(name__startswith=scheduling.schedule_name(project.pk, "")).delete()
    return task


def mails(server) -> list[tuple[str, list[str]]]:
    return [(message["Subject"], sorted(envelope.rcpt_tos)) for envelope, message in zip(server.envelopes, server.messages, strict=True)]


def succeed_by_hand(task, at: datetime) -> Run:
    run = state.start_run(task, Trigger.MANUAL, intended_at=at, queue=False).run
    return execute(run.pk)


def test_one_late_mail_at_the_expected_time_one_recovered_mail_and_none_on_a_day_without_firing(task, smtp):
    watch.watch(utc(27, 5, 59))  # Friday 06:59 CET
    assert smtp.messages == []
    watch.watch(utc(27, 6, 0))  # Friday 07:00 CET
    watch.watch(utc(27, 6, 1))
    watch.watch(utc(27, 9, 0))
    assert mails(smtp) == [("[Courier] Daily/orders is LATE: not succeeded by 2026-03-27 07:00 CET",
                            ["olga@example.test", "ops@example.test"])]
    body = smtp.messages[0].get_body(("plain",)).get_content()
    assert "no run intended on Friday 2026-03-27 had succeeded by 2026-03-27 07:00 CET" in body and "It has never run." in body

    run = succeed_by_hand(task, utc(27, 9, 30))
    assert run.status == RunStatus.SUCCEEDED
    succeed_by_hand(task, utc(27, 10, 0))  # a second success sends nothing more
    assert [subject for subject, _ in mails(smtp)][1:] == [
        "[Courier] Daily/orders recovered: succeeded after being late on Friday 2026-03-27"]
    assert f"run {run.pk} (manual trigger) ended the lateness" in smtp.messages[1].get_body(("plain",)).get_content()

    watch.watch(utc(28, 12, 0))  # Saturday: the project does not fire, nothing is late
    assert len(smtp.messages) == 2

    watch.watch(utc(29, 4, 59))  # Sunday 06:59 CEST, the day the clocks went forward
    assert len(smtp.messages) == 2
    watch.watch(utc(29, 5, 0))  # Sunday 07:00 CEST
    watch.watch(utc(29, 5, 30))
    assert [subject for subject, _ in mails(smtp)][2:] == ["[Courier] Daily/orders is LATE: not succeeded by 2026-03-29 07:00 CEST"]
    assert list(LateAlert.objects.order_by("day").values_list("day", "recovered_by")) == [
        (datetime(2026, 3, 27).date(), run.pk), (datetime(2026, 3, 29).date(), None)]
    assert [alert.task for alert in lateness.open_alerts()] == [task]


def test_a_task_that_succeeded_in_time_or_is_disabled_gets_no_late_mail(task, smtp):
    succeed_by_hand(task, utc(27, 5, 0))  # 06:00 CET, before 07:00
    watch.watch(utc(27, 8, 0))
    task.enabled = False
    task.save()
    watch.watch(utc(29, 8, 0))
    assert smtp.messages == []
