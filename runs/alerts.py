"""Mails about a task's state rather than one run's outcome: a run held by the row guard, a task recovered.

- Held: the project's owner is told that the row guard held a run, with the
  verdict and its numbers, and where to release or discard it.
- Recovered: after a failure mail went out (runs/notify.py marks the run),
  the task's next success tells the failure mail's recipients, when the
  failure mail is set to ("recovered mail").

Both are follow-ups (runs/followups.py STEPS) and are recorded as email
Deliveries of the run, like the success and failure mails.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.urls import reverse

from runs.models import Run, RunStatus
from runs.notify import STAGE, MailContext, base_values, mail_params, notify, render, send_message
from runs.pipeline.log import RunLogger
from runs.streaks import alerted_since_last_success
from tasks.models import NotificationEvent

HELD, RECOVERED = "held", "failure-recovered"


def task_url(run: Run) -> str:
    return settings.COURIER_BASE_URL.rstrip("/") + reverse("courier:task_detail", args=[run.task_id])


def send_held_mail(run: Run, log: RunLogger | None = None) -> None:
    """Follow-up: tell the project's owner that the row guard held this run."""
    if run.status != RunStatus.HELD:
        return
    log = log or RunLogger(run)
    owner = run.task.project.owner
    if not owner.email:
        log.warning(STAGE, f"The run is held, but the project's owner {owner.get_username()} has no email address: no mail was sent.")
        return
    mc = MailContext(run=run, log=log, params=mail_params(run, log))
    mc.values = {**base_values(run), "files": list(run.files.all()), "task_url": task_url(run)}
    subject, text, html = render(HELD, mc.values)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[owner.email], connection=get_connection(fail_silently=False))
    message.attach_alternative(html, "text/html")
    send_message(mc, message, f"held mail to {owner.email}")


def send_recovered_mail(run: Run, log: RunLogger | None = None) -> None:
    """Follow-up: the first success after a failure mail tells the failure mail's recipients."""
    if run.status != RunStatus.SUCCEEDED:
        return
    notification = run.task.notifications.filter(event=NotificationEvent.FAILURE, recovered=True).first()
    if notification is None:
        return
    alerted = alerted_since_last_success(run)
    if alerted is None:
        return
    notify(run, log or RunLogger(run), RECOVERED, {"alerted": alerted}, notification=notification)
