"""Project triggers → django-q2 Schedule rows: one per active trigger, next_run set by Courier, orphans found."""

from __future__ import annotations

import ast
import io
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import call_command
from django_q.models import OrmQ, Schedule

from projects import scheduling
from projects.models import Project
from runs import firing, jobs, orphans, schedulerpoll, state
from runs.models import Run, RunStatus, Trigger
from tests import factories

pytestmark = pytest.mark.django_db
UTC = timezone.utc


def courier_schedules(project: Project) -> dict[str, Schedule]:
    return {s.name.rsplit(":", 1)[1]: s for s in Schedule.objects.filter(name__startswith=f"courier:project:{project.pk}:")}


def test_each_active_trigger_is_one_schedule_with_literal_args_and_courier_next_run():
    once = datetime(2031, 5, 1, 8, 0, tzinfo=UTC)
    project = factories.project(cron="0 6 * * *", interval_every=2, interval_unit="hours", once_at=once, timezone="Europe/Amsterdam")
    rows = courier_schedules(project)
    assert set(rows) == {"cron", "interval", "once"}
    for kind, row in rows.items():
        assert row.name == f"courier:project:{project.pk}:{kind}"
        assert row.func == "runs.jobs.fire_project"
        assert ast.literal_eval(row.args) == (project.pk, kind)  # what django-q2 does on every pass
        assert row.schedule_type == Schedule.ONCE and row.repeats == 1
        assert row.intended_date_kwarg == "intended"
    # 06:00 on the Amsterdam wall clock, whatever the cluster's zone.
    cron_at = rows["cron"].next_run.astimezone(scheduling.zone_of(project))
    assert (cron_at.hour, cron_at.minute) == (6, 0)
    assert rows["once"].next_run == once


def test_clearing_and_changing_triggers_updates_the_rows():
    project = factories.project(cron="0 6 * * *", interval_every=5, interval_unit="minutes")
    project.cron, project.interval_every, project.interval_unit = "15 7 * * *", None, ""
    project.save()
    rows = courier_schedules(project)
    assert set(rows) == {"cron"}
    at = rows["cron"].next_run.astimezone(scheduling.zone_of(project))
    assert (at.hour, at.minute) == (7, 15)


def test_deleting_a_project_deletes_its_schedules():
    project = factories.project(cron="0 6 * * *")
    pk = project.pk
    project.delete()
    assert not Schedule.objects.filter(name__startswith=f"courier:project:{pk}:").exists()


def test_window_start_and_end():
    start = datetime(2040, 1, 10, 0, 0, tzinfo=UTC)
    project = factories.project(cron="0 6 * * *", start_at=start, timezone="UTC")
    assert courier_schedules(project)["cron"].next_run == datetime(2040, 1, 10, 6, 0, tzinfo=UTC)
    project.end_at = datetime(2000, 1, 1, tzinfo=UTC)
    project.start_at = None
    project.save()
    assert courier_schedules(project) == {}
    assert any("window ended" in w for w in scheduling.schedule_warnings(project))


def test_interval_is_anchored_at_its_start():
    start = datetime(2040, 1, 1, 0, 7, tzinfo=UTC)
    project = factories.project(interval_every=1, interval_unit="hours", start_at=start)
    assert courier_schedules(project)["interval"].next_run == start


def test_preview_shows_next_five_fire_times_and_dst_warnings():
    project = factories.project(cron="30 2 * * *", timezone="Europe/Amsterdam")
    times = scheduling.preview(project, now=datetime(2021, 3, 26, 12, tzinfo=UTC))
    assert [f.at.isoformat() for f in times] == [
        "2021-03-27T02:30:00+01:00", "2021-03-28T03:00:00+02:00", "2021-03-29T02:30:00+02:00",
        "2021-03-30T02:30:00+02:00", "2021-03-31T02:30:00+02:00",
    ]
    warnings = scheduling.schedule_warnings(project, now=datetime(2021, 3, 26, 12, tzinfo=UTC))
    assert len(warnings) == 1 and warnings[0].startswith("Sun 2021-03-28 03:00 CEST (cron)") and "clocks go forward" in warnings[0]


def test_fire_project_rearms_the_schedule_for_the_next_time():
    project = factories.project(cron="0 6 * * *", timezone="UTC")
    row = courier_schedules(project)["cron"]
    fired_at = row.next_run
    Schedule.objects.filter(pk=row.pk).update(repeats=0)  # what django-q2 does when it fires a one-off
    jobs.fire_project(project.pk, "cron", fired_at.isoformat())
    row.refresh_from_db()
    assert row.repeats == 1 and row.next_run == fired_at + timedelta(days=1)


def test_one_off_fires_once_and_never_again_on_resave_or_redelivery(sqlite_odbc):
    once = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)  # in the past: it still fires, once
    project = factories.project(once_at=once)
    task = factories.query_task(project, factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc), "select 1 as n")
    row = courier_schedules(project)["once"]
    assert row.next_run == once
    stale_form_copy = Project.objects.get(pk=project.pk)  # a page opened before the firing

    Schedule.objects.filter(pk=row.pk).update(repeats=0)
    assert jobs.fire_project(project.pk, "once", once.isoformat()).startswith("1 run(s)")
    jobs.fire_project(project.pk, "once", once.isoformat())  # the broker delivered it twice
    assert Run.objects.filter(task=task).count() == 1
    assert courier_schedules(project) == {}

    stale_form_copy.description = "edited"
    stale_form_copy.save()
    project.refresh_from_db()
    assert project.once_fired_for == once
    assert courier_schedules(project) == {}
    call_command("reschedule", "--all", stdout=io.StringIO())
    assert courier_schedules(project) == {}

    project.once_at = once + timedelta(days=400)  # a new one-off time fires again
    project.save()
    assert courier_schedules(project)["once"].next_run == once + timedelta(days=400)


def test_a_one_off_fired_but_not_yet_booked_is_not_rearmed_by_a_save():
    once = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)
    project = factories.project(once_at=once)
    Schedule.objects.filter(name=scheduling.schedule_name(project.pk, "once")).update(repeats=0)
    project.save()
    assert courier_schedules(project)["once"].repeats == 0


def test_fire_project_records_a_skipped_run_when_the_task_is_still_running(sqlite_odbc):
    project = factories.project(cron="0 6 * * *")
    task = factories.query_task(project, factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc), "select 1 as n")
    running = state.create_run(task, Trigger.MANUAL)
    Run.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING)
    at = datetime(2030, 1, 1, 6, tzinfo=UTC)
    jobs.fire_project(project.pk, "cron", at.isoformat())
    skipped = Run.objects.get(task=task, trigger=Trigger.SCHEDULE)
    assert skipped.status == RunStatus.SKIPPED and skipped.intended_at == at
    assert skipped.error.startswith(f"previous run still active (run {running.pk}")
    assert skipped.log_lines.get().message.startswith("Skipped: previous run still active")


def test_orphans_are_the_courier_rows_that_match_nothing():
    project = factories.project(cron="0 6 * * *")
    keep = courier_schedules(project)["cron"]
    gone = factories.project(name="Gone", cron="0 7 * * *")
    gone_row = courier_schedules(gone)["cron"]
    gone.delete()
    # A row left behind for a project that is gone (restored from a backup, written by hand, …).
    Schedule.objects.create(name=gone_row.name, func="runs.jobs.fire_project", args=gone_row.args, next_run=gone_row.next_run)
    stale_kind = Schedule.objects.create(name=scheduling.schedule_name(project.pk, "interval"), func="runs.jobs.fire_project",
                                         args=repr((project.pk, "interval")))
    duplicate = Schedule.objects.create(name=keep.name, func="runs.jobs.fire_project", args=keep.args)
    dead_retry = Schedule.objects.create(name="courier:retry:999999", func="runs.jobs.start_retry", args="(999999,)")
    old_reaper = Schedule.objects.create(name="courier:reaper", func="runs.jobs.reap", schedule_type=Schedule.MINUTES, minutes=1)
    foreign = Schedule.objects.create(name="someone-else", func="math.floor", args="(1.5,)")

    found = {s.pk for s in orphans.find()}
    orphan_pks = {stale_kind.pk, duplicate.pk, dead_retry.pk, old_reaper.pk} | set(
        Schedule.objects.filter(name=gone_row.name).values_list("pk", flat=True))
    assert found == orphan_pks
    assert keep.pk not in found and foreign.pk not in found

    call_command("orphans", "--delete", stdout=io.StringIO())
    assert orphans.find() == []
    assert Schedule.objects.filter(pk__in=[keep.pk, foreign.pk]).count() == 2


def test_the_old_reaper_schedule_is_gone_after_migrate_and_reschedule_all():
    # The reaper runs beside the workers now (runs/reaper.py); queued, it waited behind the runs.
    assert not Schedule.objects.filter(name="courier:reaper").exists()
    Schedule.objects.create(name="courier:reaper", func="runs.jobs.reap", schedule_type=Schedule.MINUTES, minutes=1)
    call_command("reschedule", "--all", stdout=io.StringIO())
    assert not Schedule.objects.filter(name="courier:reaper").exists()


def test_a_firing_whose_message_was_lost_is_fired_late_by_the_reaper_and_rearmed(sqlite_odbc):
    project = factories.project(cron="*/5 * * * *", timezone="UTC")
    task = factories.query_task(project, factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc), "select 1 as n")
    row = courier_schedules(project)["cron"]
    fired_at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    # django-q2 fired it (repeats 0) and the fire_project message never arrived.
    Schedule.objects.filter(pk=row.pk).update(repeats=0, next_run=fired_at)
    assert firing.recover_lost() == 1
    row.refresh_from_db()
    assert row.repeats == 1 and row.next_run > datetime.now(UTC)
    run = Run.objects.get(task=task)
    assert (run.trigger, run.intended_at, run.status) == (Trigger.SCHEDULE, fired_at, RunStatus.QUEUED)
    # Nothing left to recover, and a late second delivery of that firing starts nothing twice.
    assert firing.recover_lost() == 0
    jobs.fire_project(project.pk, "cron", fired_at.isoformat())
    assert Run.objects.filter(task=task).count() == 1


@pytest.mark.django_db(transaction=True)  # django-q2's scheduler closes the connection, which a test transaction cannot survive
def test_a_poll_asks_django_q2s_scheduler_only_when_a_schedule_is_due_and_a_second_poll_fires_nothing_again():
    project = factories.project(cron="0 6 * * *", timezone="UTC")
    row = courier_schedules(project)["cron"]
    assert schedulerpoll.poll() is False  # armed for a later time: the scheduler is not even asked
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    Schedule.objects.filter(pk=row.pk).update(next_run=due)

    assert schedulerpoll.poll() is True
    row.refresh_from_db()
    assert row.repeats == 0  # fired: django-q2's mark on a one-off, until fire_project re-arms it
    [message] = OrmQ.objects.all()
    assert message.task["func"] == scheduling.FIRE_FUNC and message.task["args"] == (project.pk, "cron")
    assert datetime.fromisoformat(message.task["kwargs"]["intended"]) == due
    assert schedulerpoll.poll() is False and OrmQ.objects.count() == 1


def test_no_poll_thread_when_the_poll_is_switched_off(settings):
    settings.COURIER_SCHEDULER_POLL_SECONDS = 0
    schedulerpoll.start_in_worker(sender="django_q", proc_name="Process-1:1")
    assert schedulerpoll._Poll.ticker is None


def test_a_trigger_saved_without_validation_is_not_scheduled_and_is_named_in_the_warnings():
    project = factories.project(cron="61 * * * *", interval_every=10, interval_unit="minutes")
    assert set(courier_schedules(project)) == {"interval"}
    assert scheduling.schedule_warnings(project)[0] == "The cron trigger cannot be scheduled: “61 * * * *”: the minute field “61” is not valid; it takes 0-59, with lists (1,15), ranges (1-5) and steps (*/10)."
    assert all(fire.trigger == "interval" for fire in scheduling.preview(project))
