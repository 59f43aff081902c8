"""Fire times missed while the scheduler was down: recorded as "missed", then run late per the project's policy.

On a fixed clock: a project with an every-minute cron whose scheduler came
back at 06:03:40 after being down since before 06:01 — the firing for 06:01
arrives stamped "fired 06:03:40" — has missed 06:01, 06:02 and 06:03
(COURIER_MISSED_AFTER_SECONDS is 35 here). The runs are real (SQLite over
ODBC) and executed by an in-test worker (tests/runhelpers.py `drain`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler

from projects import scheduling
from projects.cron import cron_times
from runs import catchup, firing, jobs, services
from runs.models import Run, RunStatus, SiteState, Trigger
from runs.runner import execute
from tests import factories
from tests.runhelpers import drain, ok_task, source

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc
T1, T2, T3 = (datetime(2030, 1, 2, 6, minute, tzinfo=UTC) for minute in (1, 2, 3))
BACK = datetime(2030, 1, 2, 6, 3, 40, tzinfo=UTC)  # the scheduler's first pass after the downtime


@pytest.fixture(autouse=True)
def short_grace(settings):
    settings.COURIER_MISSED_AFTER_SECONDS = 35


@pytest.fixture
def conn(sqlite_odbc):
    return source(sqlite_odbc)


def every_minute(conn, policy: str = "none", **fields):
    project = factories.project(name=f"p-{policy}", cron="* * * * *", timezone="Europe/Amsterdam", missed_policy=policy, **fields)
    ok_task(project, conn, "t")
    return project


def runs_of(project, **filters) -> list[tuple]:
    return list(Run.objects.filter(task__project=project, **filters).order_by("intended_at", "id")
                .values_list("trigger", "intended_at", "status"))


def missed_times(project) -> list[datetime]:
    return [at for _, at, _ in runs_of(project, status=RunStatus.MISSED)]


def catch_ups(project) -> list[tuple[datetime, str]]:
    return [(at, status) for _, at, status in runs_of(project, trigger=Trigger.CATCH_UP)]


@pytest.mark.parametrize("policy, ran", [("none", []), ("latest", [T3]), ("all", [T1, T2, T3])])
def test_three_missed_fire_times_are_recorded_and_run_late_as_the_policy_says(conn, policy, ran):
    project = every_minute(conn, policy)
    said = firing.fire(project.pk, "cron", T1, BACK)
    assert "3 missed fire time(s) recorded" in said
    assert missed_times(project) == [T1, T2, T3]
    drain()
    assert catch_ups(project) == [(at, RunStatus.SUCCEEDED) for at in ran]
    # Nothing was started as if on time: the runs are the missed records and the catch-ups only.
    assert Run.objects.filter(task__project=project).count() == 3 + len(ran)
    record = Run.objects.get(task__project=project, intended_at=T1, status=RunStatus.MISSED)
    assert (record.trigger, record.attempt, record.started_at, record.worker) == (Trigger.SCHEDULE, 1, None, "")
    assert record.error.startswith("Missed: the fire time 2030-01-02 07:01 CET passed while the scheduler was not running")


def test_all_runs_one_missed_time_at_a_time_oldest_first(conn):
    project = every_minute(conn, "all")
    firing.fire(project.pk, "cron", T1, BACK)
    order = []
    while (queued := list(Run.objects.filter(task__project=project, status=RunStatus.QUEUED))):
        assert len(queued) == 1, "never two catch-up runs at once"
        order.append(queued[0].intended_at)
        execute(queued[0].pk)
    assert order == [T1, T2, T3]


def test_the_catch_up_window_leaves_older_missed_times_unrun(conn):
    project = every_minute(conn, "all", catch_up_minutes=2)  # at 06:03:40, 06:01 is 2 min 40 s old
    firing.fire(project.pk, "cron", T1, BACK)
    drain()
    assert missed_times(project) == [T1, T2, T3]
    assert catch_ups(project) == [(T2, RunStatus.SUCCEEDED), (T3, RunStatus.SUCCEEDED)]
    too_old = Run.objects.get(task__project=project, intended_at=T1, status=RunStatus.MISSED)
    assert too_old.error.endswith("it is older than the project's catch-up window (2 minutes).")
    latest = every_minute(conn, "latest", catch_up_minutes=0)  # nothing is young enough
    firing.fire(latest.pk, "cron", T1, BACK)
    assert catch_ups(latest) == []


def test_a_fire_time_runs_at_most_once_whatever_is_delivered_again(conn):
    project = every_minute(conn, "all")
    firing.fire(project.pk, "cron", T1, BACK)
    drain()
    # The same firing delivered again, and the scheduler coming back twice more over the same times.
    firing.fire(project.pk, "cron", T1, BACK)
    firing.fire(project.pk, "cron", T1, BACK + timedelta(seconds=30))
    firing.fire(project.pk, "cron", T2, BACK + timedelta(minutes=1))
    catchup.kick_all()
    drain()
    assert missed_times(project) == [T1, T2, T3]
    assert catch_ups(project) == [(at, RunStatus.SUCCEEDED) for at in (T1, T2, T3)]
    # The database itself refuses a second row for a fire time, whatever code path tries.
    task = project.tasks.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.create(task=task, trigger=Trigger.CATCH_UP, intended_at=T2, due_at=T2)
    # Retries share their run's intended time, as before.
    Run.objects.create(task=task, trigger=Trigger.RETRY, intended_at=T2, due_at=T2, attempt=2)
    Run.objects.create(task=task, trigger=Trigger.RETRY, intended_at=T2, due_at=T2, attempt=3)


def test_a_firing_on_time_starts_its_run_and_records_nothing_missed(conn):
    project = every_minute(conn, "all")
    assert firing.fire(project.pk, "cron", T1, T1 + timedelta(seconds=29)) == f"1 run(s) for {project}"
    drain()
    # Unstamped (queued before this version, or fired by hand): taken as on time, as before.
    firing.fire(project.pk, "cron", T2)
    drain()
    assert runs_of(project) == [(Trigger.SCHEDULE, T1, RunStatus.SUCCEEDED), (Trigger.SCHEDULE, T2, RunStatus.SUCCEEDED)]


def test_when_the_latest_time_came_due_just_before_the_scheduler_returned_it_runs_and_latest_adds_nothing(conn):
    project = every_minute(conn, "latest")
    back = datetime(2030, 1, 2, 6, 4, 10, tzinfo=UTC)  # 06:04 is 10 s old: on time
    firing.fire(project.pk, "cron", T1, back)
    drain()
    assert missed_times(project) == [T1, T2, T3]
    assert runs_of(project, status=RunStatus.SUCCEEDED) == [(Trigger.SCHEDULE, T3 + timedelta(minutes=1), RunStatus.SUCCEEDED)]


def test_a_sequence_runs_a_missed_time_late_as_a_whole_chain(conn):
    project = factories.project(name="seq", cron="* * * * *", sequence=True, missed_policy="latest")
    ok_task(project, conn, "a", rank=1)
    ok_task(project, conn, "b", rank=2)
    firing.fire(project.pk, "cron", T1, BACK)
    drain()
    assert len(missed_times(project)) == 6  # each fire time for each task
    late = list(Run.objects.filter(task__project=project, intended_at=T3).exclude(status=RunStatus.MISSED)
                .order_by("id").values_list("task__name", "trigger", "status"))
    assert late == [("a", Trigger.CATCH_UP, RunStatus.SUCCEEDED), ("b", Trigger.SEQUENCE, RunStatus.SUCCEEDED)]


@pytest.mark.django_db(transaction=True)  # django-q2's scheduler closes a connection that is inside a transaction
def test_the_scheduler_stamps_when_it_fired_and_a_late_firing_records_the_times_it_missed(conn, settings):
    """A real django-q2 scheduler pass over a schedule left three minutes behind (the cluster was down)."""
    settings.COURIER_MISSED_AFTER_SECONDS = 120
    project = every_minute(conn, "none")
    now = timezone.now()
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=3)
    Schedule.objects.filter(name=scheduling.schedule_name(project.pk, "cron")).update(next_run=first)
    scheduler()
    [message] = [queued.task for queued in OrmQ.objects.all() if queued.task["func"] == scheduling.FIRE_FUNC]
    kwargs = {key: value for key, value in message["kwargs"].items() if key != "q_options"}
    assert kwargs["intended"] == first.isoformat()
    fired = datetime.fromisoformat(kwargs["fired"])
    assert now <= fired <= timezone.now()
    jobs.fire_project(*message["args"], **kwargs)
    drain()
    # 3 minutes behind: three fire times missed, and the one of this minute (under 60 s old) started on time.
    assert missed_times(project) == [first + timedelta(minutes=n) for n in range(3)]
    assert runs_of(project, status=RunStatus.SUCCEEDED) == [(Trigger.SCHEDULE, first + timedelta(minutes=3), RunStatus.SUCCEEDED)]


def test_resume_runs_nothing_of_the_pause_and_resume_and_catch_up_records_it_as_missed(conn):
    plain, caught = every_minute(conn, "all"), every_minute(conn, "latest")
    caught.name = "p-caught"
    caught.save()
    site = SiteState.get()
    paused_at = timezone.now() - timedelta(seconds=200)
    services.pause_scheduler()
    SiteState.objects.filter(pk=site.pk).update(paused_at=paused_at)
    plain.missed_policy = "none"
    plain.save()
    services.resume_scheduler()
    assert Run.objects.count() == 0

    services.pause_scheduler()
    SiteState.objects.filter(pk=site.pk).update(paused_at=paused_at)
    services.resume_scheduler(catch_up=True)
    expected = [fire.at for fire in cron_times("* * * * *", scheduling.zone_of(caught), paused_at, 10) if fire.at <= timezone.now()]
    assert missed_times(caught) == expected and len(expected) >= 3
    assert missed_times(plain) == expected
    drain()
    assert catch_ups(caught) == [(expected[-1], RunStatus.SUCCEEDED)]
    assert catch_ups(plain) == []
    assert "the scheduler was paused" in Run.objects.filter(task__project=plain).first().error


def test_catch_up_for_fixed_times_after_a_pause(conn):
    project = every_minute(conn, "all")
    recorded = catchup.after_pause(T1 - timedelta(seconds=20), BACK)
    assert [run.intended_at for run in recorded] == [T1, T2, T3]
    drain()
    assert catch_ups(project) == [(at, RunStatus.SUCCEEDED) for at in (T1, T2, T3)]


def test_a_fire_time_without_an_offset_is_read_as_utc(conn):
    """django-q2 passes aware times; a naive one (a hand-made schedule row) is UTC, not an error."""
    project = every_minute(conn, "none")
    jobs.fire_project(project.pk, "cron", "2030-01-02T06:01:00", "2030-01-02T06:01:05")
    assert runs_of(project) == [(Trigger.SCHEDULE, T1, RunStatus.SUCCEEDED)]  # run by the firing job itself
