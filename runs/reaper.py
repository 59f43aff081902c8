"""Runs whose worker is gone: the reaper that notices a silent heartbeat.

While a run works, a thread of its worker writes `heartbeat_at` every
COURIER_HEARTBEAT_SECONDS (runs/ticker.py `Heartbeat`). A worker killed
outright (SIGKILL, a machine restart, django-q2's timeout guard) stops
beating; the reaper, a django-q2 schedule every minute and
`manage.py reap_runs`, marks a running run that has been silent for
COURIER_REAP_AFTER_SECONDS as failed ("worker lost") and gives it the same
follow-ups as any failure (runs/followups.py): retry policy, sequence,
failure mail.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from runs import followups
from runs.models import Run, RunStatus, Stage

logger = logging.getLogger(__name__)


def reap_after() -> timedelta:
    return timedelta(seconds=settings.COURIER_REAP_AFTER_SECONDS)


def stale_runs(now: datetime | None = None, stale_after: timedelta | None = None):
    cutoff = (now or timezone.now()) - (stale_after or reap_after())
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    return Run.objects.filter(silent, status=RunStatus.RUNNING).select_related("task__project")


def reap(now: datetime | None = None, stale_after: timedelta | None = None) -> list[Run]:
    """Mark silent running runs failed ("worker lost") and apply the retry policy; returns them."""
    now = now or timezone.now()
    reaped = []
    for run in stale_runs(now, stale_after):
        seen = run.heartbeat_at or run.started_at
        message = (f"Worker lost: {run.worker or 'its worker'} gave no sign of life since "
                   f"{timezone.localtime(seen):%Y-%m-%d %H:%M:%S %Z}; the run was stopped without finishing.")
        # Only if nothing changed since we looked: a late heartbeat or finish wins.
        still = {"status": RunStatus.RUNNING, "heartbeat_at": run.heartbeat_at}
        if not followups.fail(run, still, now=now, message=message, stage=Stage.FINISH, permanent=False):
            continue
        reaped.append(run)
        logger.warning("Run %s of %s: %s", run.pk, run.task, message)
    return reaped
