"""The daily digest for a fixed day, read back from a real SMTP server (aiosmtpd).

The day's runs are made as the run engine records them (state.create_run,
then their outcome); the clock is fixed by passing `now`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from connections.models import GpgKey
from runs import digest
from runs.models import DeliveryStatus, DigestMail, LateAlert, RunStatus, Trigger
from runs.state import create_run
from tests import factories
from tests.delivery_support import mail_through

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 14)


@pytest.fixture
def smtp(smtp_server, settings):
    return mail_through(smtp_server, settings)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_current_timezone())


def ended(task, status: str, finished: datetime, **fields):
    run = create_run(task, Trigger.SCHEDULE, intended_at=finished - timedelta(minutes=5), status=status,
                     started_at=finished - timedelta(minutes=1), finished_at=finished, **fields)
    return run


@pytest.fixture
def world(django_user_model):
    alice = django_user_model.objects.create_user("alice", "alice@example.test")
    bob = django_user_model.objects.create_user("bob", "bob@example.test")
    conn = factories.connection("database", name="db", dialect="sqlite", odbc="Driver={SQLite3};Database=/tmp/x.db;")
    key = GpgKey.objects.create(name="vendor", public_key="(armoured key)", fingerprint="ABCD1234", expires_at=at(DAY, 12) + timedelta(days=11))
    sales = factories.project("Sales", owner=alice, owner_digest=True)
    quiet = factories.project("Quiet", owner=alice)  # no digest for this one
    factories.project("Stock", owner=bob, owner_digest=True)
    orders = factories.query_task(sales, conn, "select 1", name="orders", gpg_key=key)
    pickup = factories.query_task(sales, conn, "select 1", name="pickup")
    other = factories.query_task(quiet, conn, "select 1", name="other")
    final = ended(orders, RunStatus.FAILED, at(DAY, 10), error="The query failed: no such table: orders", error_stage="source")
    retried = ended(orders, RunStatus.FAILED, at(DAY, 6), error="timeout", error_stage="source")
    create_run(orders, Trigger.RETRY, retry_of=retried, attempt=2, status=RunStatus.SUCCEEDED)
    ended(orders, RunStatus.FAILED, at(DAY - timedelta(days=1), 23, 59), error="the day before", error_stage="source")
    ended(other, RunStatus.FAILED, at(DAY, 11), error="not in the digest", error_stage="source")
    held = ended(pickup, RunStatus.HELD, at(DAY, 8, 30), rows=4, guard_report="Row guard: 4 rows; at least 10 rows wanted. Broken: fewer than 10 rows.")
    LateAlert.objects.create(task=orders, day=DAY, expected_at=at(DAY, 7, 30))
    return {"final": final, "held": held, "key": key}


def test_the_digest_of_a_fixed_day(world, smtp):
    assert digest.send_digests(at(DAY + timedelta(days=1), 6, 59)) == []  # before the digest hour (7)

    sent = digest.send_digests(at(DAY + timedelta(days=1), 7, 5))

    assert [(m.owner.username, m.day, m.status) for m in sent] == [("alice", DAY, DeliveryStatus.SENT), ("bob", DAY, DeliveryStatus.SKIPPED)]
    assert len(smtp.messages) == 1 and smtp.envelopes[0].rcpt_tos == ["alice@example.test"]
    mail = smtp.messages[0]
    assert mail["Subject"].strip() == "[Courier] Daily digest for 2026-03-14: 1 failed, 1 held, 1 late, 1 key expiring"
    final, held = world["final"], world["held"]
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == (
        "Courier's digest of Saturday 2026-03-14 for alice (the projects you own that send a digest).\n"
        "\n"
        "Failed for good (1):\n"
        f"- Sales/orders: run {final.pk}, attempt 1, at the source stage: The query failed: no such table: orders\n"
        f"  https://courier.example.test/admin/courier/tasks/{final.task_id}/\n"
        "\n"
        "Held by a row guard, waiting for you (1):\n"
        f"- Sales/pickup: run {held.pk} since 2026-03-14 08:30: Row guard: 4 rows; at least 10 rows wanted. Broken: fewer than 10 rows.\n"
        f"  https://courier.example.test/admin/courier/tasks/{held.task_id}/\n"
        "\n"
        "Late (1):\n"
        "- Sales/orders: expected by 07:30, not succeeded yet\n"
        "\n"
        "GPG keys that expire within 30 days (1):\n"
        "- vendor (ABCD1234): expires on 2026-03-25, in 11 days; used by Sales/orders\n"
    )
    # Once a day: a later pass the same day sends nothing more.
    assert digest.send_digests(at(DAY + timedelta(days=1), 9)) == []
    assert len(smtp.messages) == 1 and DigestMail.objects.count() == 2
