"""GPG keys about to expire: the dashboard's list, and one warning mail to the owners at 30 and at 7 days.

A key whose expiry is 30 days away or less is listed with the tasks that
encrypt for it (an expired one too, marked: its runs now fail permanently,
runs/pipeline/output.py). Each owner of such a task gets one mail when the
key has 30 days left and one when it has 7; a `KeyExpiryWarning` row per key,
threshold and expiry date keeps it to one, so a renewed key (a new expiry)
is warned about afresh. `now` is a parameter so that a fixed clock can be used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from connections.models import GpgKey
from runs.models import KeyExpiryWarning
from tasks.models import Task

logger = logging.getLogger(__name__)

LIST_DAYS = 30
WARN_AT_DAYS = (7, 30)  # ascending: a key with 5 days left is at the 7-day warning


@dataclass
class ExpiringKey:
    key: GpgKey
    days_left: int  # 0 or less: expired
    tasks: list[Task] = field(default_factory=list)

    @property
    def expired(self) -> bool:
        return self.days_left <= 0


def days_left(key: GpgKey, now: datetime) -> int:
    """Whole days until the expiry, counted up: a key expiring in 4 days and 1 hour has 5 left."""
    return math.ceil((key.expires_at - now) / timedelta(days=1))


def expiring_keys(now: datetime | None = None, within_days: int = LIST_DAYS) -> list[ExpiringKey]:
    """Keys that expire within `within_days` (or have expired), soonest first, with the tasks that use them."""
    now = now or timezone.now()
    keys = (GpgKey.objects.filter(expires_at__isnull=False, expires_at__lte=now + timedelta(days=within_days))
            .order_by("expires_at").prefetch_related("tasks__project__owner"))
    return [ExpiringKey(key, days_left(key, now), sorted(key.tasks.all(), key=str)) for key in keys]


def threshold(days: int) -> int | None:
    return next((limit for limit in WARN_AT_DAYS if days <= limit), None)


def send_expiry_warnings(now: datetime | None = None) -> list[KeyExpiryWarning]:
    """Mail the owners of tasks using a key that reached 30 or 7 days before its expiry, once per threshold."""
    now = now or timezone.now()
    sent = []
    for item in expiring_keys(now):
        limit = threshold(item.days_left)
        if item.expired or limit is None:
            continue
        if KeyExpiryWarning.objects.filter(key=item.key, days=limit, expires_at=item.key.expires_at).exists():
            continue
        recipients = _mail_owners(item)
        if recipients is not None:
            sent.append(KeyExpiryWarning.objects.create(key=item.key, days=limit, expires_at=item.key.expires_at, recipients=recipients))
    return sent


def _mail_owners(item: ExpiringKey) -> str | None:
    """One mail per owner, naming their tasks; what to record, or None when a mail failed (tried again next time)."""
    by_owner: dict = {}
    for task in item.tasks:
        by_owner.setdefault(task.project.owner, []).append(task)
    if not by_owner:
        return "no task uses the key"
    mailed, failed = [], False
    for owner, tasks in sorted(by_owner.items(), key=lambda pair: pair[0].get_username()):
        if not owner.email:
            logger.warning("GPG key %s expires soon; owner %s has no email address", item.key, owner)
            continue
        values = {"item": item, "key": item.key, "tasks": tasks, "owner": owner,
                  "base_url": settings.COURIER_BASE_URL.rstrip("/"),
                  "task_urls": [(t, settings.COURIER_BASE_URL.rstrip("/") + reverse("courier:task_detail", args=[t.pk])) for t in tasks]}
        try:
            send_rendered("key-expiry", values, [owner.email])
        except Exception:  # noqa: BLE001 - SMTP, DNS and socket errors: the warning is tried again on the next pass
            logger.exception("The expiry warning for GPG key %s could not be sent to %s", item.key, owner.email)
            failed = True
            continue
        mailed.append(owner.email)
    if failed:
        return None
    return ", ".join(mailed) or "no owner has an email address"


def send_rendered(kind: str, values: dict, to: list[str]) -> None:
    """A mail from templates/emails/<kind>-subject/-body-text/-body-html.html; raises when it cannot be sent."""
    subject = " ".join(render_to_string(f"emails/{kind}-subject.html", values).split())
    message = EmailMultiAlternatives(subject=subject, body=render_to_string(f"emails/{kind}-body-text.html", values), to=to)
    message.attach_alternative(render_to_string(f"emails/{kind}-body-html.html", values), "text/html")
    message.send(fail_silently=False)
