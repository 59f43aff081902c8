"""Sequence and parallel projects: order by rank then name, skip after a final failure, a retry continues the chain."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from runs import firing, retries, services
from runs.models import Run, RunStatus, Trigger
from tests import factories
from tests.runhelpers import add_item, broken_task, drain, flaky_task, ok_task, source

pytestmark = pytest.mark.django_db
AT = datetime(2030, 1, 2, 6, 0, tzinfo=timezone.utc)


def fire(project) -> str:
    # The firing alone: every run goes through the queue, which drain() empties in order (the firing
    # job also runs the first run itself: tests/test_firing_runs_here.py).
    return firing.fire(project.pk, "cron", AT)


def chain(runs: list[Run]) -> list[tuple[str, str]]:
    return [(run.task.name, run.status) for run in runs]


@pytest.fixture
def conn(sqlite_odbc):
    return source(sqlite_odbc)


def test_sequence_runs_enabled_tasks_by_rank_then_name(conn):
    project = factories.project(sequence=True, cron="0 6 * * *")
    for name, rank in [("b", 2), ("a", 2), ("c", 1), ("z", None), ("y", None)]:
        ok_task(project, conn, name, rank=rank)
    ok_task(project, conn, "off", rank=0, enabled=False)

    fire(project)
    assert Run.objects.count() == 1  # only the head starts; each success starts the next
    runs = drain()
    assert chain(runs) == [(name, RunStatus.SUCCEEDED) for name in ["c", "a", "b", "y", "z"]]
    assert runs[0].trigger == Trigger.SCHEDULE and all(run.trigger == Trigger.SEQUENCE for run in runs[1:])
    assert [run.sequence_from_id for run in runs[1:]] == [run.pk for run in runs[:-1]]
    assert {run.intended_at for run in runs} == {AT}
    assert runs[-1].log_lines.last().message == "Sequence complete: this was its last task."


def test_after_a_final_failure_the_rest_are_recorded_as_skipped(conn):
    project = factories.project(sequence=True)
    ok_task(project, conn, "1-first", rank=1)
    broken_task(project, conn, "2-broken", rank=2, retry_max=3)  # permanent: no retry
    ok_task(project, conn, "3-third", rank=3)
    ok_task(project, conn, "4-fourth", rank=4)

    fire(project)
    runs = drain()
    assert chain(runs) == [("1-first", RunStatus.SUCCEEDED), ("2-broken", RunStatus.FAILED)]
    skipped = list(Run.objects.filter(status=RunStatus.SKIPPED).order_by("id"))
    assert chain(skipped) == [("3-third", RunStatus.SKIPPED), ("4-fourth", RunStatus.SKIPPED)]
    assert all(run.sequence_from_id == runs[1].pk and run.intended_at == AT for run in skipped)
    assert skipped[0].error == f"2-broken did not succeed (run {runs[1].pk}, failed)."


def test_a_successful_retry_continues_the_chain(sqlite_odbc, conn):
    project = factories.project(sequence=True)
    ok_task(project, conn, "1-first", rank=1)
    flaky_task(project, conn, "2-flaky", rank=2, retry_max=2, retry_delay_minutes=0)
    ok_task(project, conn, "3-third", rank=3)

    fire(project)
    first_pass = drain()
    assert chain(first_pass) == [("1-first", RunStatus.SUCCEEDED), ("2-flaky", RunStatus.FAILED)]
    assert not Run.objects.filter(status=RunStatus.SKIPPED).exists()  # a retry follows: not final yet
    pending = Run.objects.get(status=RunStatus.RETRY_SCHEDULED)

    assert "previous run still active" in fire_again(project).error  # the chain is still going

    add_item(sqlite_odbc)
    retries.start_retry(pending.pk)
    second_pass = drain()
    assert chain(second_pass) == [("2-flaky", RunStatus.SUCCEEDED), ("3-third", RunStatus.SUCCEEDED)]
    assert second_pass[0].retry_of_id == first_pass[1].pk and second_pass[1].sequence_from_id == second_pass[0].pk


def fire_again(project) -> Run:
    firing.fire(project.pk, "cron", datetime(2030, 1, 3, 6, 0, tzinfo=timezone.utc))
    return Run.objects.filter(trigger=Trigger.SCHEDULE).order_by("-id").first()


def test_cancelling_the_retry_of_a_chain_skips_the_rest(conn):
    project = factories.project(sequence=True)
    flaky = flaky_task(project, conn, "1-flaky", rank=1, retry_max=1)
    ok_task(project, conn, "2-next", rank=2)
    fire(project)
    drain()
    cancelled = services.cancel_retry(flaky)
    skipped = Run.objects.get(status=RunStatus.SKIPPED)
    assert skipped.task.name == "2-next" and skipped.sequence_from_id == cancelled.pk


def test_run_all_honours_the_sequence_and_a_single_task_run_does_not_chain(conn, superuser):
    project = factories.project(sequence=True)
    first = ok_task(project, conn, "a", rank=1)
    ok_task(project, conn, "b", rank=2)

    services.run_now(first, user=superuser)
    assert chain(drain()) == [("a", RunStatus.SUCCEEDED)]

    runs = services.run_project(project, user=superuser)
    assert [(run.task.name, run.trigger) for run in runs] == [("a", Trigger.SEQUENCE)]
    done = drain()
    assert chain(done) == [("a", RunStatus.SUCCEEDED), ("b", RunStatus.SUCCEEDED)]
    assert {run.started_by_id for run in done} == {superuser.pk}


def test_parallel_project_starts_every_enabled_task_at_once(conn):
    project = factories.project(cron="0 6 * * *")
    for name in ["x", "y", "z"]:
        ok_task(project, conn, name)
    ok_task(project, conn, "off", enabled=False)
    fire(project)
    queued = Run.objects.order_by("task__name")
    assert [(run.task.name, run.status, run.trigger) for run in queued] == [
        (name, RunStatus.QUEUED, Trigger.SCHEDULE) for name in ["x", "y", "z"]
    ]
    assert [run.status for run in drain()] == [RunStatus.SUCCEEDED] * 3


def test_enable_all_disable_all_and_duplicate(conn, superuser):
    project = factories.project()
    task = ok_task(project, conn, "orders", rank=3)
    task.parameters.create(key="@secret", sensitive=True, secret_value="s3cret")
    task.notifications.create(event="failure", recipients="ops@example.test")
    folder = factories.connection("folder", name="drop", folder="/tmp")
    factories.destination(task, folder, folder="out")

    assert services.disable_all(project) == 1 and services.enable_all(project) == 1
    copy = services.duplicate_task(task, superuser)
    again = services.duplicate_task(task, superuser)
    assert (copy.name, copy.enabled, copy.rank, copy.project_id) == ("orders (copy)", False, 3, project.pk)
    assert again.name == "orders (copy 2)"
    assert copy.code_locations.get().text == "select 1 as n"
    assert copy.parameters.get().secret_value == "s3cret"
    assert copy.destinations.get().folder == "out" and copy.notifications.get().recipients == "ops@example.test"
    assert task.code_locations.count() == 1  # the original keeps its own rows
