"""Late alerts: a task that had not succeeded by its expected time, on a day its project's triggers fire.

A task may say "should have succeeded by HH:MM" (`Task.expected_by`, in its
project's time zone). The watch's pass (runs/watch.py, at most 30 s apart)
looks at each such task: once the time has passed today, on a day the
project's triggers fire, with no run intended today that succeeded, it
records a `LateAlert` for the task and day and sends one late mail, to the
failure mail's recipients and the project's owner. It needs no run to exist:
a task that never started (the scheduler down, its schedule gone, a worker
stuck) is late all the same. A run intended that day that succeeds later
ends the lateness with one "recovered" mail (`after_run`, a follow-up).

Exactly one of each, also with several clusters watching at once: the
alert is a row unique per task and day (only the process that created it
mails), and "recovered" is a conditional UPDATE.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from projects import scheduling
from projects.models import Project
from runs.models import LateAlert, Run, RunStatus, Stage
from runs.notify import render, split_recipients
from runs.pipeline.log import RunLogger
from tasks.models import NotificationEvent, Task

logger = logging.getLogger(__name__)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(day, time(), tzinfo=zone), datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


def expected_moment(task: Task, day: date) -> datetime:
    """`expected_by` on `day` in the project's zone (a time in a daylight-saving gap falls after it)."""
    zone = scheduling.zone_of(task.project)
    naive = datetime.combine(day, task.expected_by)
    return naive.replace(tzinfo=zone).astimezone(dt_timezone.utc).astimezone(zone)


def fires_on(project: Project, day: date) -> bool:
    """Whether any trigger of the project fires on `day` (its zone), inside its active window."""
    start, end = day_bounds(day, scheduling.zone_of(project))
    if project.once_at and start <= project.once_at < end and scheduling.in_window(project, project.once_at):
        return True
    for kind in ("cron", "interval"):
        if kind not in scheduling.active_kinds(project) or scheduling.trigger_problem(project, kind):
            continue
        times = scheduling.trigger_times(project, kind, start - timedelta(microseconds=1), 1)
        if times and times[0].at < end:
            return True
    return False


def succeeded_on(task: Task, day: date) -> bool:
    start, end = day_bounds(day, scheduling.zone_of(task.project))
    return task.runs.filter(status=RunStatus.SUCCEEDED, intended_at__gte=start, intended_at__lt=end).exists()


def due_day(task: Task, now: datetime) -> date | None:
    """Today (the project's zone) if the task is late today, else None."""
    day = timezone.localtime(now, scheduling.zone_of(task.project)).date()
    if expected_moment(task, day) > now or not fires_on(task.project, day) or succeeded_on(task, day):
        return None
    return day


def check(now: datetime | None = None) -> list[LateAlert]:
    """Alert every enabled task that is late today and not alerted yet; returns the new alerts."""
    now = now or timezone.now()
    alerts = []
    for task in Task.objects.filter(enabled=True, expected_by__isnull=False).select_related("project__owner"):
        day = due_day(task, now)
        if day is None or LateAlert.objects.filter(task=task, day=day).exists():
            continue
        try:
            with transaction.atomic():
                alert = LateAlert.objects.create(task=task, day=day, expected_at=expected_moment(task, day))
        except IntegrityError:
            continue  # another watcher got there first, and mails
        alert.late_mail = send(task, "late", _values(task, alert))
        alert.save(update_fields=["late_mail"])
        logger.warning("%s is late: no run intended on %s succeeded by %s (%s).", task, day, alert.expected_at, alert.late_mail)
        alerts.append(alert)
    return alerts


def after_run(run: Run, log: RunLogger | None = None) -> None:
    """Follow-up: a success intended on a day the task was late on sends the one "recovered" mail."""
    if run.status != RunStatus.SUCCEEDED or run.task.expected_by is None:
        return
    day = timezone.localtime(run.intended_at, scheduling.zone_of(run.task.project)).date()
    ended = LateAlert.objects.filter(task=run.task, day=day, recovered_at__isnull=True).update(
        recovered_at=timezone.now(), recovered_by=run,
    )
    if not ended:
        return
    alert = LateAlert.objects.get(task=run.task, day=day)
    alert.recovered_mail = send(run.task, "recovered", {**_values(run.task, alert), "run": run, "run_url": _url("admin:runs_run_change", run.pk)})
    alert.save(update_fields=["recovered_mail"])
    if log is not None:
        log.info(Stage.NOTIFY, f"No longer late for {day:%Y-%m-%d}: recovered mail {alert.recovered_mail}.")


def recipients(task: Task) -> list[str]:
    """The failure mail's recipients and the project's owner, each once."""
    failure = task.notifications.filter(event=NotificationEvent.FAILURE).first()
    text = failure.recipients if failure else ""
    owner = task.project.owner.email
    return split_recipients(f"{text};{owner}" if owner else text).emails


def send(task: Task, kind: str, values: dict) -> str:
    """Send the late or recovered mail; says to whom it went, or why not (kept on the alert)."""
    to = recipients(task)
    if not to:
        return "not sent: the task has no failure mail recipients and its owner no email address"
    subject, text, html = render(kind, values)
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    message.attach_alternative(html, "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - SMTP, DNS, TLS and socket errors all mean "not sent"
        logger.error("The %s mail of %s could not be sent: %s", kind, task, exc)
        return f"not sent: {type(exc).__name__}: {exc}"
    return f"sent to {', '.join(to)}"


def _url(name: str, pk: int) -> str:
    return settings.COURIER_BASE_URL.rstrip("/") + reverse(name, args=[pk])


def _values(task: Task, alert: LateAlert) -> dict:
    zone = scheduling.zone_of(task.project)
    last = task.runs.order_by("-id").first()
    return {
        "task": task, "project": task.project, "alert": alert,
        "expected": f"{alert.expected_at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
        "day": f"{alert.day:%A %Y-%m-%d}",
        "last": last,
        "last_when": f"{timezone.localtime(last.intended_at, zone):%Y-%m-%d %H:%M %Z}" if last else "",
        "task_url": _url("courier:task_detail", task.pk),
    }


def open_alerts():
    """Late alerts not recovered yet, newest first: the dashboard's "Late" panel."""
    return LateAlert.objects.filter(recovered_at__isnull=True).select_related("task__project").order_by("-expected_at")
