"""The firing job runs its project's first run itself: one queue trip from the scheduler to the run (issue 20.2).

django-q2 finds the project's schedule due and queues `runs.jobs.fire_project`;
the worker that takes it makes the runs and, instead of leaving the first to
a second trip through the queue, starts it at once. Its message is queued
all the same, so a worker that dies after the firing leaves nothing behind:
whichever worker claims the run first runs it, the other finds it taken. Real
runs (SQLite over ODBC) and django-q2's own queue on the test database.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from runs import firing, jobs, state
from runs.models import Run, RunStatus
from tests import factories
from tests.runhelpers import ok_task, source

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(sqlite_odbc):
    conn = source(sqlite_odbc)
    made = factories.project(name="minutely", cron="* * * * *")
    for name in ("a-first", "b-second"):
        ok_task(made, conn, name)
    return made


def queued_runs() -> list[int]:
    """The run ids of the execute_run messages waiting in django-q2's queue."""
    return sorted(message.task["args"][0] for message in OrmQ.objects.all() if message.task["func"] == state.EXECUTE_FUNC)


def test_the_firing_job_runs_the_first_run_itself_and_queues_both(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        said = jobs.fire_project(project.pk, "cron", timezone.now().replace(second=0, microsecond=0).isoformat())
    first, second = Run.objects.filter(task__project=project).order_by("task__name")
    assert said.endswith(f"; run {first.pk} ran here: succeeded")
    assert first.status == RunStatus.SUCCEEDED and first.worker == state.worker_name()
    assert second.status == RunStatus.QUEUED
    assert queued_runs() == [first.pk, second.pk]  # the first run's message too, in case this worker had died
    # The workers take the messages: the first run's finds it done, the second runs.
    assert [jobs.execute_run(run_id) for run_id in queued_runs()] == ["not claimed", RunStatus.SUCCEEDED]
    assert first.log_lines.filter(message__startswith="Attempt 1").count() == 1  # it ran once


def test_a_run_another_worker_claimed_first_is_left_to_it(project):
    run = state.create_run(project.tasks.get(name="a-first"), "schedule")
    assert state.claim(run.pk) is not None  # a free worker took the message first
    assert firing._run_first_here([run]) == f"; run {run.pk} was taken by another worker"
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and not run.log_lines.exists()  # not run a second time


def test_a_firing_that_starts_nothing_runs_nothing_here(project):
    busy = state.create_run(project.tasks.get(name="a-first"), "manual")
    state.create_run(project.tasks.get(name="b-second"), "manual")
    said = jobs.fire_project(project.pk, "cron", timezone.now().replace(second=0, microsecond=0).isoformat())
    assert said == f"2 run(s) for {project}, 2 skipped"  # both tasks still busy: only skipped runs, none run here
    busy.refresh_from_db()
    assert busy.status == RunStatus.QUEUED
