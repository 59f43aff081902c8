"""Keeps django-q2 `Schedule` rows in step with each project's triggers.

One schedule per active trigger, named "courier:project:<id>:<cron|interval|once>",
calling `runs.jobs.fire_project(<id>, "<kind>")` with the fire time passed as
the `intended` keyword. Every schedule is a django-q2 one-off ("O") armed with
`repeats=1` and a `next_run` that Courier computes in the project's own time
zone (projects/cron.py): django-q2 would compute cron times in the cluster's
zone, and never recomputes `next_run` when an expression changes (SPEC §11).

When a schedule fires, django-q2 sets `repeats=0` and keeps the row (it only
deletes one-offs with negative repeats); `fire_project` then re-arms it with
the next fire time (`after_firing`). Under PostgreSQL the scheduler holds the
row lock until its pass commits, so the re-arm always lands after it. The
reaper fires again any schedule whose firing was never handled
(`lost_firings`; runs/firing.py `recover_lost`).

Args are plain ints and strings only: django-q2 parses them with
`ast.literal_eval`, and one unparsable row stops every schedule.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_migrate, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from django_q.models import Schedule

from projects.cron import FireTime, cron_times, interval_times
from projects.models import Project

logger = logging.getLogger(__name__)

PREFIX = "courier:"
PROJECT_PREFIX = "courier:project:"
# The reaper once was a queued job on this schedule; it now runs beside the workers (runs/reaper.py).
LEGACY_REAPER_NAME = "courier:reaper"
FIRE_FUNC = "runs.jobs.fire_project"
KINDS = ("cron", "interval", "once")
# django-q2's scheduler wakes about every 30 s (SPEC §11); each worker also asks it every
# COURIER_SCHEDULER_POLL_SECONDS (runs/schedulerpoll.py).
SCHEDULER_PASS = timedelta(seconds=30)
# A fired schedule that fire_project has not re-armed after this long lost its message.
REARM_GRACE = timedelta(minutes=2)


def schedule_name(project_id: int, kind: str) -> str:
    return f"{PROJECT_PREFIX}{project_id}:{kind}"


def parse_name(name: str) -> tuple[int, str] | None:
    """(project id, trigger kind) of a project schedule's name, or None."""
    if not name or not name.startswith(PROJECT_PREFIX):
        return None
    ident, _, kind = name[len(PROJECT_PREFIX):].partition(":")
    return (int(ident), kind) if ident.isdigit() and kind in KINDS else None


# --- fire times --------------------------------------------------------------------------


def zone_of(project: Project) -> ZoneInfo:
    return ZoneInfo(project.timezone)


def once_pending(project: Project) -> bool:
    return bool(project.once_at) and project.once_fired_for != project.once_at


def in_window(project: Project, at: datetime) -> bool:
    return not (project.start_at and at < project.start_at) and not (project.end_at and at > project.end_at)


def active_kinds(project: Project) -> list[str]:
    kinds = []
    if project.cron:
        kinds.append("cron")
    if project.interval_every and project.interval_unit:
        kinds.append("interval")
    if once_pending(project):
        kinds.append("once")
    return kinds


def trigger_times(project: Project, kind: str, after: datetime, count: int = 5) -> list[FireTime]:
    """The next fire times of one trigger strictly after `after`, inside the active window.

    A one-off that has not fired is returned even when its time has passed: it
    fires at the scheduler's next pass (it was asked for, and fires only once).
    """
    zone = zone_of(project)
    if kind == "once":
        if not once_pending(project) or not in_window(project, project.once_at):
            return []
        late = project.once_at <= after
        note = "This time has passed without firing; it fires at the scheduler's next pass." if late else ""
        return [FireTime(project.once_at.astimezone(zone), "once", note)]
    if project.start_at:
        after = max(after, project.start_at - timedelta(microseconds=1))
    if kind == "cron":
        return cron_times(project.cron, zone, after, count, until=project.end_at)
    if kind == "interval":
        anchor = project.start_at or project.created_at or after
        return interval_times(project.interval_every, project.interval_unit, anchor, zone, after, count, until=project.end_at)
    raise ValueError(f"Unknown trigger kind “{kind}”.")


def trigger_problem(project: Project, kind: str) -> str | None:
    """Why a trigger cannot be scheduled (saved without the form's checks), or None."""
    try:
        trigger_times(project, kind, timezone.now(), 1)
    except (ValueError, KeyError) as exc:  # CronError is a ValueError; an unknown zone is a KeyError
        return f"The {kind} trigger cannot be scheduled: {exc}"
    return None


def next_fire(project: Project, kind: str, after: datetime) -> datetime | None:
    if kind not in active_kinds(project):
        return None
    try:
        times = trigger_times(project, kind, after, 1)
    except (ValueError, KeyError):
        # A project saved without validation must not make its save fail here;
        # the pages and `scheduler status` name the problem (schedule_warnings).
        logger.warning("Project %s: the %s trigger is invalid and is not scheduled.", project, kind)
        return None
    return times[0].at if times else None


def preview(project: Project, now: datetime | None = None, count: int = 5) -> list[FireTime]:
    """The project's next `count` fire times over all its triggers, in its time zone."""
    now = now or timezone.now()
    times = [fire for kind in active_kinds(project) if not trigger_problem(project, kind)
             for fire in trigger_times(project, kind, now, count)]
    return sorted(times, key=lambda fire: fire.at.timestamp())[:count]


def scheduler_looks_every() -> float:
    """Seconds between two looks for due schedules: the workers' polls, or django-q2's own pass with them off."""
    poll = settings.COURIER_SCHEDULER_POLL_SECONDS
    return min(poll, SCHEDULER_PASS.total_seconds()) if poll > 0 else SCHEDULER_PASS.total_seconds()


def describe_fire(fire: FireTime) -> str:
    return f"{fire.at:%a %Y-%m-%d %H:%M %Z} ({fire.trigger})"


def schedule_warnings(project: Project, now: datetime | None = None, times: list[FireTime] | None = None) -> list[str]:
    """Daylight-saving remarks on the next fire times, and triggers that will not fire as one might think."""
    now = now or timezone.now()
    times = preview(project, now) if times is None else times
    warnings = [problem for kind in active_kinds(project) if (problem := trigger_problem(project, kind))]
    warnings += [f"{describe_fire(fire)}: {fire.note}" for fire in times if fire.note]
    zone = zone_of(project)
    if once_pending(project) and not in_window(project, project.once_at):
        warnings.append(f"The one-off time {project.once_at.astimezone(zone):%Y-%m-%d %H:%M %Z} is outside the active window; it will not fire.")
    if project.end_at and project.end_at < now and (project.cron or project.interval_every):
        warnings.append(f"The active window ended {project.end_at.astimezone(zone):%Y-%m-%d %H:%M %Z}; the triggers no longer fire.")
    looks = scheduler_looks_every()
    if project.interval_unit == "seconds" and project.interval_every and project.interval_every < looks:
        warnings.append(f"The scheduler looks about every {looks:g} seconds, so this interval fires at most that often.")
    return warnings


# --- schedule rows ----------------------------------------------------------------------------


def _arm(name: str, project_id: int, kind: str, at: datetime) -> Schedule:
    rows = list(Schedule.objects.filter(name=name).order_by("pk"))
    schedule = rows[0] if rows else Schedule(name=name)
    schedule.func, schedule.hook = FIRE_FUNC, None
    schedule.args, schedule.kwargs = repr((int(project_id), str(kind))), None
    schedule.schedule_type, schedule.repeats, schedule.next_run = Schedule.ONCE, 1, at
    schedule.cron, schedule.minutes, schedule.cluster = None, None, None
    schedule.intended_date_kwarg = "intended"
    schedule.save()
    Schedule.objects.filter(pk__in=[row.pk for row in rows[1:]]).delete()
    return schedule


def _fired_once_awaiting_bookkeeping(project: Project) -> bool:
    # django-q2 has fired the one-off (repeats 0) but fire_project has not yet
    # recorded it: re-arming now would fire it a second time.
    return Schedule.objects.filter(name=schedule_name(project.pk, "once"), repeats=0, next_run=project.once_at).exists()


def sync_project(project: Project, now: datetime | None = None) -> dict[str, Schedule | None]:
    """Create, update or delete the project's schedules so they match its triggers."""
    now = now or timezone.now()
    result: dict[str, Schedule | None] = {}
    for kind in KINDS:
        name = schedule_name(project.pk, kind)
        at = next_fire(project, kind, now)
        if at is None:
            Schedule.objects.filter(name=name).delete()
            result[kind] = None
        elif kind == "once" and _fired_once_awaiting_bookkeeping(project):
            result[kind] = Schedule.objects.filter(name=name).first()
        else:
            result[kind] = _arm(name, project.pk, kind, at)
    return result


def remove_project(project_id: int) -> int:
    return Schedule.objects.filter(name__startswith=f"{PROJECT_PREFIX}{project_id}:").delete()[0]


def sync_all() -> int:
    """Rebuild every project's schedules; returns the number of armed schedules."""
    armed = 0
    for project in Project.objects.all():
        armed += sum(1 for schedule in sync_project(project).values() if schedule is not None)
    remove_legacy_reaper()
    return armed


def after_firing(project_id: int, kind: str, intended: datetime, now: datetime | None = None) -> Project | None:
    """Bookkeeping after a schedule fired: record a one-off as done, or re-arm for the next time.

    Locks the project row so that a concurrent save cannot re-arm a one-off
    that is being recorded as fired.
    """
    now = now or timezone.now()
    name = schedule_name(project_id, kind)
    with transaction.atomic():
        project = Project.objects.select_for_update().filter(pk=project_id).first()
        if project is None:
            remove_project(project_id)
            return None
        if kind == "once":
            if project.once_at == intended:
                Project.objects.filter(pk=project_id).update(once_fired_for=intended)
                project.once_fired_for = intended
            # Only the fired row: a save may already have armed a new one-off time.
            Schedule.objects.filter(name=name).filter(Q(repeats=0) | Q(next_run=intended)).delete()
            return project
        at = next_fire(project, kind, max(intended, now))
        if at is None:
            Schedule.objects.filter(name=name).delete()
        else:
            Schedule.objects.filter(name=name).update(next_run=at, repeats=1)
    return project


def lost_firings(now: datetime) -> list[Schedule]:
    """Project schedules that fired longer than REARM_GRACE ago and were never handled by fire_project."""
    fired = Schedule.objects.filter(name__startswith=PROJECT_PREFIX, repeats=0, next_run__lt=now - REARM_GRACE)
    return [schedule for schedule in fired.order_by("next_run") if parse_name(schedule.name)]


def remove_legacy_reaper() -> int:
    """Delete the reaper's old every-minute schedule: queued behind busy workers, it could not reap in time."""
    return Schedule.objects.filter(name=LEGACY_REAPER_NAME).delete()[0]


# --- signals: every save of a project, from any page or command, keeps its schedules in step ---


@receiver(pre_save, sender=Project)
def keep_fired_marker(sender, instance: Project, raw: bool = False, update_fields=None, **kwargs) -> None:
    """Never let a save from a stale form forget that the one-off already fired.

    The marker is written by fire_project with an UPDATE; a page opened before
    that and saved after it would otherwise write the old empty value back.
    """
    if raw or instance.pk is None or instance.once_fired_for is not None:
        return
    if update_fields is not None and "once_fired_for" not in update_fields:
        return
    instance.once_fired_for = Project.objects.filter(pk=instance.pk).values_list("once_fired_for", flat=True).first()


@receiver(post_save, sender=Project)
def project_saved(sender, instance: Project, raw: bool = False, **kwargs) -> None:
    if not raw:
        sync_project(instance)


@receiver(post_delete, sender=Project)
def project_deleted(sender, instance: Project, **kwargs) -> None:
    remove_project(instance.pk)


@receiver(post_migrate)
def reaper_after_migrate(sender, app_config=None, using: str = "default", **kwargs) -> None:
    """Every `migrate` removes the reaper's old schedule (also `reschedule --all` and `scheduler resume`)."""
    if app_config is None or app_config.label != "projects":
        return
    if Schedule._meta.db_table in connections[using].introspection.table_names():
        remove_legacy_reaper()
