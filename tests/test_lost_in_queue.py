"""A queued run whose queue message was lost is queued again once, then failed "lost in the queue" (issue 16 item 8).

The broker is django-q2's real ORM broker (the embedded default): losing the
message is deleting its OrmQ row, as a broker flush would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from runs import jobs, reaper, state
from runs.models import Run, RunStatus, Stage, Trigger
from tests import factories
from tests.database_support import database

# django-q2's broker rows must really be written: on_commit must fire.
pytestmark = pytest.mark.django_db(transaction=True)


def queued_messages() -> list[dict]:
    return [message.task for message in OrmQ.objects.all() if message.task["func"] == state.EXECUTE_FUNC]


def lose_the_message_and_wait(run: Run, settings) -> None:
    OrmQ.objects.all().delete()
    waited = timedelta(seconds=settings.COURIER_QUEUE_LOST_AFTER_SECONDS + 1)
    Run.objects.filter(pk=run.pk).update(due_at=timezone.now() - waited)


@pytest.fixture
def queued_run(sqlite_odbc) -> Run:
    task = factories.query_task(factories.project(), database(sqlite_odbc), "SELECT 'arrived' AS word", retry_max=1)
    run = state.start_run(task, Trigger.MANUAL).run
    assert [message["args"] for message in queued_messages()] == [(run.pk,)]
    return run


def test_a_run_whose_message_was_lost_is_queued_again_and_then_runs(queued_run, settings):
    lose_the_message_and_wait(queued_run, settings)
    assert queued_messages() == []

    requeued, failed = reaper.recover_queued()

    assert [run.pk for run in requeued] == [queued_run.pk] and failed == []
    queued_run.refresh_from_db()
    assert queued_run.status == RunStatus.QUEUED and queued_run.requeued_at is not None
    [message] = queued_messages()
    # A worker takes the new message: the run runs and its file arrives.
    assert jobs.execute_run(*message["args"]) == RunStatus.SUCCEEDED
    queued_run.refresh_from_db()
    assert queued_run.files.get().stored.read() == b"word\narrived\n"
    assert any("queued again" in line for line in queued_run.log_lines.values_list("message", flat=True))


def test_a_run_not_waited_for_long_enough_is_left_alone(queued_run, settings):
    OrmQ.objects.all().delete()
    assert reaper.recover_queued() == ([], [])
    queued_run.refresh_from_db()
    assert queued_run.status == RunStatus.QUEUED and queued_run.requeued_at is None


def test_lost_again_it_fails_lost_in_the_queue_and_its_retry_is_planned(queued_run, settings):
    lose_the_message_and_wait(queued_run, settings)
    reaper.recover_queued()
    lose_the_message_and_wait(queued_run, settings)

    requeued, failed = reaper.recover_queued()

    assert requeued == [] and [run.pk for run in failed] == [queued_run.pk]
    queued_run.refresh_from_db()
    assert queued_run.status == RunStatus.FAILED and queued_run.error_stage == Stage.CLAIM
    assert queued_run.error.startswith("Lost in the queue: no worker took the run within 10 min")
    assert queued_messages() == []  # not queued a third time
    retry = state.next_attempt(queued_run)
    assert retry is not None and retry.status == RunStatus.RETRY_SCHEDULED and retry.attempt == 2


def test_a_second_message_for_a_run_already_taken_does_nothing(queued_run, settings):
    # The first message was only late, not lost: both arrive, the run runs once.
    lose_the_message_and_wait(queued_run, settings)
    reaper.recover_queued()
    assert jobs.execute_run(queued_run.pk) == RunStatus.SUCCEEDED
    assert jobs.execute_run(queued_run.pk) == "not claimed"
    assert queued_run.task.runs.count() == 1
