"""Resend a stored file to its task's *current* destinations: new, audited deliveries.

Called by the pages (Task Details → file history). The stored copy is sent
as it is (already encrypted and zipped, as it was delivered), after checking
its SHA-256 against the recorded one. Each destination's own rules apply
(if the file exists, do not send empty files). The deliveries are added to
the run that made the file, marked with the user who resent it; the run log
and the admin log both say who did it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied

from connections import audit
from connections.secrets import SecretError
from runs.models import Delivery, RunFile
from runs.pipeline import delivery
from runs.pipeline.errors import StageFailure
from runs.pipeline.log import RunLogger
from runs.pipeline.output import fetch_stored
from tasks.masking import task_masker

RESEND_PERMISSION = "tasks.run_task"


class ResendError(Exception):
    """The file cannot be resent (no destinations, stored copy gone or changed)."""


def resend_file(record: RunFile, user) -> list[Delivery]:
    """Send `record` again to every current destination of its task; returns the new deliveries.

    Delivery failures are recorded on the returned rows (status "failed" with
    the error), not raised. Raises PermissionDenied for a user who may not run
    tasks, ResendError when there is nothing to send or nowhere to send it.
    Every message is masked: the file's name may hold a sensitive value.
    """
    if not user.has_perm(RESEND_PERMISSION):
        raise PermissionDenied("You do not have permission to run tasks, so you cannot resend files.")
    run = record.run
    task = run.task
    log = RunLogger(run)
    try:
        log.masker = task_masker(task)
    except SecretError as exc:
        raise ResendError(str(exc)) from None
    destinations = delivery.destinations_of(task)
    if not destinations:
        raise ResendError(log.mask(f"The task {task} has no destinations to resend {record.name} to."))
    work = Path(settings.COURIER_WORK_DIR)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=f"resend-{record.pk}-") as folder:
        try:
            path = fetch_stored(record, Path(folder))
        except StageFailure as exc:
            raise ResendError(log.mask(exc.message)) from None
        log.info(delivery.STAGE, f"{user} resends {record.name} to the task's current destinations.")
        deliveries = delivery.create_uploads(run, [(record, d) for d in destinations], resent_by=user)
        delivery.send(log, deliveries, {record.pk: path})
    summary = "; ".join(f"{d.target}: {d.get_status_display().lower()}" for d in deliveries)
    audit.record(user, task, log.mask(f"Resent {record.name} (run {run.pk}) — {summary}"))
    return deliveries
