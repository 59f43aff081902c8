"""A resend by hand goes through the queue (issue 16 item 8): queued by the page, claimed once by a worker,
never left waiting for ever.

The broker is django-q2's real ORM broker (the embedded default): losing the
message is deleting its OrmQ row, as a broker flush would. The 200 MB resend
from the page through a real cluster is in tests/test_cluster_embedded.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from runs import jobs, reaper, resend
from runs.live import task_state
from runs.models import Delivery, DeliveryStatus, RunFile
from tests.delivery_support import ORDERS_CSV, folder_destination, stored_orders

# django-q2's broker rows must really be written: on_commit must fire.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stored(sqlite_odbc, tmp_path) -> RunFile:
    record = stored_orders(sqlite_odbc, tmp_path / "first")
    record.run.task.destinations.all().delete()
    folder_destination(record.run.task, tmp_path / "again")
    return record


def resend_messages() -> list[tuple]:
    return [message.task["args"] for message in OrmQ.objects.all() if message.task["func"] == resend.SEND_FUNC]


def statuses(record: RunFile) -> list[tuple[str, str]]:
    return list(record.deliveries.filter(resent_by__isnull=False).values_list("status", "error"))


def test_the_page_s_resend_is_queued_and_a_worker_sends_it_once_even_if_its_message_comes_twice(stored, staff_runner, tmp_path):
    [queued] = resend.queue_resend(stored, staff_runner)

    assert statuses(stored) == [(DeliveryStatus.QUEUED, "")] and resend_messages() == [(queued.pk,)]
    assert not (tmp_path / "again" / "orders.csv").exists()
    assert jobs.send_resend(queued.pk) == "sent"
    assert (tmp_path / "again" / "orders.csv").read_bytes() == ORDERS_CSV
    (tmp_path / "again" / "orders.csv").unlink()
    assert jobs.send_resend(queued.pk) == "not claimed"  # the same message delivered again sends nothing
    assert not (tmp_path / "again" / "orders.csv").exists() and statuses(stored) == [(DeliveryStatus.SENT, "")]


def test_a_stored_copy_changed_after_queueing_fails_the_resend_with_the_reason(stored, staff_runner, tmp_path, settings):
    [queued] = resend.queue_resend(stored, staff_runner)
    with open(stored.stored.path, "ab") as changed:
        changed.write(b"3,tampered\n")

    assert jobs.send_resend(queued.pk) == "failed"

    assert statuses(stored) == [(DeliveryStatus.FAILED, "The stored copy of orders.csv no longer matches its recorded size and SHA-256; it is not sent.")]
    assert not (tmp_path / "again" / "orders.csv").exists()
    assert not list(settings.COURIER_WORK_DIR.glob(f"resend-{stored.pk}-*"))  # the worker's copy is gone with its folder


def lose_the_messages_and_wait(settings) -> None:
    OrmQ.objects.all().delete()
    waited = timezone.now() - timedelta(seconds=settings.COURIER_QUEUE_LOST_AFTER_SECONDS + 1)
    Delivery.objects.filter(status=DeliveryStatus.QUEUED).update(queued_at=waited)
    Delivery.objects.filter(requeued_at__isnull=False).update(requeued_at=waited)


def test_a_resend_whose_message_was_lost_is_queued_again_then_sent(stored, staff_runner, settings, tmp_path):
    [queued] = resend.queue_resend(stored, staff_runner)
    lose_the_messages_and_wait(settings)

    assert resend.recover() == ([queued.pk], [])

    [message] = resend_messages()
    assert jobs.send_resend(*message) == "sent"
    assert (tmp_path / "again" / "orders.csv").read_bytes() == ORDERS_CSV


def test_lost_twice_a_resend_fails_lost_in_the_queue_and_is_not_queued_a_third_time(stored, staff_runner, settings):
    [queued] = resend.queue_resend(stored, staff_runner)
    lose_the_messages_and_wait(settings)
    reaper.patrol()  # the reaper's pass queues it again
    lose_the_messages_and_wait(settings)

    assert resend.recover() == ([], [queued.pk])

    [(status, error)] = statuses(stored)
    assert status == DeliveryStatus.FAILED and error.startswith("Lost in the queue: no worker took the resend within 10 min")
    assert resend_messages() == []


def test_a_resend_whose_worker_fell_silent_is_failed_and_its_folder_removed(stored, staff_runner, settings):
    [queued] = resend.queue_resend(stored, staff_runner)
    assert [d.pk for d in resend.claim([queued.pk])] == [queued.pk]  # a worker took it, then died
    folder = settings.COURIER_WORK_DIR / f"resend-{stored.pk}-killed"
    folder.mkdir(parents=True)
    assert resend.sweep_work_folders() == []  # still being sent: kept
    silent = timezone.now() - timedelta(seconds=settings.COURIER_REAP_AFTER_SECONDS + 1)
    Delivery.objects.filter(pk=queued.pk).update(heartbeat_at=silent)

    assert resend.recover() == ([], [queued.pk])
    assert resend.sweep_work_folders() == [folder] and not folder.exists()

    [(status, error)] = statuses(stored)
    assert status == DeliveryStatus.FAILED and error.startswith("Worker lost: the worker sending this resend gave no sign of life")


def test_the_live_state_follows_a_resend_from_queued_to_sent(stored, staff_runner):
    task = stored.run.task
    before = task_state(task)
    [queued] = resend.queue_resend(stored, staff_runner)
    waiting = task_state(task)
    assert waiting.resending and waiting.version != before.version
    resend.claim([queued.pk])
    sending = task_state(task)
    assert sending.resending and sending.version != waiting.version
    Delivery.objects.filter(pk=queued.pk).update(status=DeliveryStatus.SENT)
    done = task_state(task)
    assert not done.resending and done.version not in (before.version, waiting.version, sending.version)
