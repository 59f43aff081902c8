"""Resend a stored file to its task's *current* destinations: queued by a person, sent by a worker.

The page only records the resend and queues it (`queue_resend`): one
Delivery per current destination, "queued", added to the run that made the
file and marked with the user who asked. So a large file to a slow server
never holds a web request or its thread. A worker then claims those rows
with a conditional UPDATE (a message delivered twice sends once), copies
the stored file back, checks its SHA-256 and sends it as it is (already
encrypted and zipped, as it was delivered), under the task's timeout as a
run would be (`send_queued`). Each destination's own rules apply (if the
file exists, do not send empty files). Task Details shows the rows' progress
(runs/live.py); the run log and the admin log say who asked and how it
ended.

Like a run, a resend is never left waiting for ever: the reaper queues again,
once, one that no worker took within COURIER_QUEUE_LOST_AFTER_SECONDS, then
fails it, and fails one whose worker fell silent (`recover`).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from connections import audit
from connections.clients import deadline
from connections.secrets import SecretError
from runs.models import Delivery, DeliveryStatus, RunFile
from runs.pipeline import context, delivery
from runs.pipeline.errors import StageFailure
from runs.pipeline.log import RunLogger
from runs.pipeline.output import fetch_stored, stored_problem
from runs.ticker import Heartbeat, queue_lost_after, reap_after
from tasks.masking import task_masker

logger = logging.getLogger(__name__)

RESEND_PERMISSION = "tasks.run_task"
# django-q2 finds the worker's side by name (runs/jobs.py).
SEND_FUNC = "runs.jobs.send_resend"
# The worker's copy of the stored file lives in COURIER_WORK_DIR/resend-<file id>-<random> while it is sent.
FOLDER_PREFIX = "resend-"


class ResendError(Exception):
    """The file cannot be resent (no destinations, stored copy gone or outside the storage, a secret unreadable)."""


# --- the page's side -----------------------------------------------------------------------------------


def queue_resend(record: RunFile, user) -> list[Delivery]:
    """Queue `record` for every current destination of its task; returns the new, queued deliveries.

    Raises PermissionDenied for a user who may not run tasks, ResendError
    when there is nothing to send or nowhere to send it. Every message is
    masked: the file's name may hold a sensitive value.
    """
    if not user.has_perm(RESEND_PERMISSION):
        raise PermissionDenied("You do not have permission to run tasks, so you cannot resend files.")
    run, task = record.run, record.run.task
    log = _logger_for(record)
    destinations = delivery.destinations_of(task)
    if not destinations:
        raise ResendError(log.mask(f"The task {task} has no destinations to resend {record.name} to."))
    problem = stored_problem(record)
    if problem:
        raise ResendError(log.mask(problem))
    with transaction.atomic():
        deliveries = delivery.create_uploads(
            run, [(record, d) for d in destinations], status=DeliveryStatus.QUEUED, resent_by=user, queued_at=timezone.now(),
        )
        log.info(delivery.STAGE, f"{user} resends {record.name} to the task's current destinations; queued for a worker.")
        audit.record(user, task, log.mask(f"Resent {record.name} (run {run.pk}): queued for {targets(deliveries)}"))
        enqueue(deliveries)
    return deliveries


def targets(deliveries: list[Delivery]) -> str:
    return "; ".join(d.target for d in deliveries)


def enqueue(deliveries: list[Delivery]) -> None:
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: async_task(SEND_FUNC, *ids, task_name=f"resend-{ids[0]}", group="resends"))


def _logger_for(record: RunFile) -> RunLogger:
    log = RunLogger(record.run)
    try:
        log.masker = task_masker(record.run.task)
    except SecretError as exc:
        raise ResendError(str(exc)) from None
    return log


# --- the worker's side -----------------------------------------------------------------------------------


def claim(delivery_ids: list[int]) -> list[Delivery]:
    """Take the still-queued deliveries for this worker (one conditional UPDATE each); returns those taken."""
    now = timezone.now()
    taken = [pk for pk in delivery_ids
             if Delivery.objects.filter(pk=pk, status=DeliveryStatus.QUEUED).update(status=DeliveryStatus.PENDING, heartbeat_at=now)]
    related = ("file__run__task__project", "destination__connection__organization", "resent_by")
    return list(Delivery.objects.filter(pk__in=taken).select_related(*related).order_by("id"))


def send_queued(delivery_ids: list[int]) -> list[Delivery]:
    """Send the queued resend deliveries given (one file); returns those this worker sent, failed or skipped."""
    claimed = claim(delivery_ids)
    if not claimed:
        return []
    record = claimed[0].file
    sending = Delivery.objects.filter(pk__in=[d.pk for d in claimed], status=DeliveryStatus.PENDING)
    beat = Heartbeat.start(sending, name=f"heartbeat-resend-{claimed[0].pk}")
    try:
        log = _logger_for(record)
        with deadline.applies(context.task_deadline(record.run.task)):
            _send(log, record, claimed)
    except ResendError as exc:
        fail(claimed, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must still end the deliveries, never leave them "pending"
        logger.exception("The resend of file %s failed unexpectedly", record.pk)
        fail(claimed, f"Internal error: {type(exc).__name__}")
    finally:
        beat.stop()
    summary = "; ".join(f"{d.target}: {d.get_status_display().lower()}" for d in claimed)
    user = claimed[0].resent_by
    if user is not None:
        audit.record(user, record.run.task, RunLogger(record.run).mask(f"Resend of {record.name} (run {record.run_id}) ended — {summary}"))
    return claimed


def _send(log: RunLogger, record: RunFile, claimed: list[Delivery]) -> None:
    with tempfile.TemporaryDirectory(dir=context.work_root(), prefix=f"{FOLDER_PREFIX}{record.pk}-") as folder:
        try:
            path = fetch_stored(record, Path(folder))
        except StageFailure as exc:
            log.error(delivery.STAGE, f"The resend of {record.name} cannot start: {exc.message}")
            raise ResendError(log.mask(exc.message)) from None
        log.info(delivery.STAGE, f"A worker sends {record.name}, resent by {claimed[0].resent_by}.")
        delivery.send(log, claimed, {record.pk: path})


def fail(deliveries: list[Delivery], message: str) -> None:
    """Fail those of `deliveries` that are not over yet, with `message`."""
    for row in deliveries:
        if row.status in Delivery.UNFINISHED:
            row.status, row.error, row.at = DeliveryStatus.FAILED, message, timezone.now()
            row.save(update_fields=["status", "error", "at"])


# --- the reaper's side -----------------------------------------------------------------------------------


def recover(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Resends lost in the queue or by their worker: queued again once, or failed; returns (requeued ids, failed ids)."""
    now = now or timezone.now()
    bound = queue_lost_after()
    resends = Delivery.objects.filter(resent_by__isnull=False)
    requeued: list[int] = []
    for row in resends.filter(status=DeliveryStatus.QUEUED, requeued_at__isnull=True, queued_at__lt=now - bound):
        if Delivery.objects.filter(pk=row.pk, status=DeliveryStatus.QUEUED, requeued_at__isnull=True).update(requeued_at=now):
            enqueue([row])
            requeued.append(row.pk)
    minutes = f"{bound.total_seconds() / 60:g}"
    lost = (f"Lost in the queue: no worker took the resend within {minutes} min, "
            f"nor within {minutes} min of its being queued again.")
    failed = _fail_where(resends.filter(status=DeliveryStatus.QUEUED, requeued_at__lt=now - bound), lost, now)
    silent = now - reap_after()
    worker_lost = "Worker lost: the worker sending this resend gave no sign of life; the file may not have arrived."
    failed += _fail_where(resends.filter(status=DeliveryStatus.PENDING, heartbeat_at__lt=silent), worker_lost, now)
    for pk in requeued + failed:
        logger.warning("Resend delivery %s: %s", pk, "queued again" if pk in requeued else "failed, lost")
    return requeued, failed


def _fail_where(rows, message: str, now: datetime) -> list[int]:
    """Fail each row of `rows` by a conditional UPDATE (a late worker's own outcome wins); returns those failed."""
    failed = []
    for row in rows:
        still = {"status": row.status, "requeued_at": row.requeued_at, "heartbeat_at": row.heartbeat_at}
        if Delivery.objects.filter(pk=row.pk, **still).update(status=DeliveryStatus.FAILED, error=message, at=now):
            failed.append(row.pk)
    return failed


def sweep_work_folders() -> list[Path]:
    """Remove this machine's resend folders whose file has no resend being sent: a killed worker left them."""
    return context.sweep_work_folders(FOLDER_PREFIX, _being_sent, "a resend that is no longer being sent")


def _being_sent(file_ids: set[int]) -> set[int]:
    # A resend's folder is made only once its deliveries are claimed (pending).
    return set(Delivery.objects.filter(file_id__in=file_ids, status=DeliveryStatus.PENDING).values_list("file_id", flat=True))
