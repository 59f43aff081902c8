"""The daily digest: one mail per owner on the day before — final failures, held runs, late tasks, expiring keys.

Opt-in per project (`Project.owner_digest`): an owner gets one digest
covering every project of theirs that has it on. From COURIER_DIGEST_HOUR
(site time zone) the watch's pass (runs/watch.py) sends each such owner the
digest of yesterday, once: a `DigestMail` row per owner and day is made
before the mail goes, so two watchers never both send it. A day with
nothing to report sends nothing (recorded as skipped). `now` is a parameter
so that a fixed clock can be used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from projects.models import Project
from runs.keywatch import ExpiringKey, expiring_keys, send_rendered
from runs.models import DeliveryStatus, DigestMail, LateAlert, Run, RunStatus

logger = logging.getLogger(__name__)


@dataclass
class Digest:
    owner: object
    day: date
    failures: list[Run] = field(default_factory=list)
    held: list[Run] = field(default_factory=list)
    late: list[LateAlert] = field(default_factory=list)
    keys: list[ExpiringKey] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.failures or self.held or self.late or self.keys)


def _bounds(day: date) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    return datetime.combine(day, time(), tzinfo=zone), datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


def final_failures(runs: QuerySet, day: date) -> list[Run]:
    """Runs that failed on `day` with no retry after them (a cancelled retry leaves the failure final)."""
    start, end = _bounds(day)
    retried = Run.objects.filter(retry_of=OuterRef("pk")).exclude(status=RunStatus.CANCELLED)
    failed = runs.filter(status=RunStatus.FAILED, finished_at__gte=start, finished_at__lt=end).exclude(Exists(retried))
    return list(failed.select_related("task__project").order_by("finished_at"))


def gather(owner, day: date, now: datetime) -> Digest:
    projects = Project.objects.filter(owner=owner, owner_digest=True)
    runs = Run.objects.filter(task__project__in=projects)
    digest = Digest(owner, day, failures=final_failures(runs, day))
    digest.held = list(runs.filter(status=RunStatus.HELD).select_related("task__project").order_by("finished_at"))
    digest.late = list(LateAlert.objects.filter(task__project__in=projects, day=day).select_related("task__project").order_by("expected_at"))
    project_ids = set(projects.values_list("pk", flat=True))
    for item in expiring_keys(now):
        mine = [task for task in item.tasks if task.project_id in project_ids]
        if mine:
            digest.keys.append(ExpiringKey(item.key, item.days_left, mine))
    return digest


def due_day(now: datetime) -> date | None:
    """The day whose digest is due at `now`: yesterday, from the digest hour on."""
    local = timezone.localtime(now)
    return local.date() - timedelta(days=1) if local.hour >= settings.COURIER_DIGEST_HOUR else None


def send_digests(now: datetime | None = None) -> list[DigestMail]:
    """Send every opted-in owner the digest of yesterday that has not gone yet."""
    now = now or timezone.now()
    day = due_day(now)
    if day is None:
        return []
    done = DigestMail.objects.filter(day=day).values("owner")
    owners = get_user_model().objects.filter(projects__owner_digest=True).exclude(pk__in=done).distinct().order_by("pk")
    return [mail for owner in owners if (mail := _send_one(owner, day, now)) is not None]


def _send_one(owner, day: date, now: datetime) -> DigestMail | None:
    try:
        with transaction.atomic():
            record = DigestMail.objects.create(owner=owner, day=day, status=DeliveryStatus.PENDING)
    except IntegrityError:
        return None  # another watcher has it
    digest = gather(owner, day, now)
    if digest.empty or not owner.email:
        record.status, record.error = DeliveryStatus.SKIPPED, "nothing to report" if digest.empty else "the owner has no email address"
    else:
        try:
            send_rendered("digest", _values(digest), [owner.email])
            record.status = DeliveryStatus.SENT
        except Exception as exc:  # noqa: BLE001 - SMTP, DNS and socket errors: recorded, not raised into the watch
            logger.exception("The digest for %s could not be sent", owner)
            record.status, record.error = DeliveryStatus.FAILED, f"{type(exc).__name__}: {exc}"
    record.save(update_fields=["status", "error"])
    return record


def _values(digest: Digest) -> dict:
    base = settings.COURIER_BASE_URL.rstrip("/")
    return {"digest": digest, "owner": digest.owner, "day": digest.day, "task_url": base + reverse("courier:task_list"),
            "base": base}
