"""The watch: what must happen at a time whether or not any run exists — one pass on every patrol of the reaper.

Each pass: late alerts (runs/lateness.py), waiting runs settled and those
past their deadline failed ("dependencies not met by …"), and missed fire
times still to be run late started when their task is idle
(runs/catchup.py); the GPG key expiry warnings (runs/keywatch.py) and,
from its hour on, the owners' daily digests (runs/digest.py). Every step is on its own: one failing step (a database
hiccup) does not stop the others. Several watchers at once (one per
cluster) are harmless: each change is a conditional UPDATE or a unique row.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from projects import scheduling
from runs import catchup, dependencies, digest, followups, keywatch, lateness, waiting
from runs.models import Run, RunStatus, Stage

logger = logging.getLogger(__name__)


def give_up(now: datetime | None = None) -> list[Run]:
    """Fail every run still waiting at its deadline; the failure follows its usual course (mail, no retry)."""
    now = now or timezone.now()
    failed = []
    for run in waiting.waiting_runs():
        deadline = dependencies.deadline(run)
        if deadline > now:
            continue
        local = timezone.localtime(deadline, scheduling.zone_of(run.task.project))
        message = f"Dependencies not met by {local:%Y-%m-%d %H:%M %Z}: still waiting for {run.waiting_for or 'them'}."
        if followups.fail(run, {"status": RunStatus.WAITING}, now=now, message=message, stage=Stage.CLAIM, permanent=True):
            failed.append(run)
    return failed


def watch(now: datetime | None = None) -> str:
    """One pass of every step; says what it did."""
    done = []
    steps = (
        ("late alerts", lambda: len(lateness.check(now))),
        ("waiting runs settled", lambda: sum(waiting.settle_all().values())),
        ("waiting runs given up", lambda: len(give_up(now))),
        ("catch-up runs started", catchup.kick_all),
        ("GPG key expiry warnings sent", lambda: len(keywatch.send_expiry_warnings(now))),
        ("daily digests handled", lambda: len(digest.send_digests(now))),
    )
    for name, step in steps:
        try:
            done.append(f"{step()} {name}")
        except Exception:  # noqa: BLE001 - one failing step must not stop the others
            logger.exception("The watch's step “%s” failed; it tries again on its next pass.", name)
    return ", ".join(done)
