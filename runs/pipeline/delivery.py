"""The delivery stage: every stored file to every destination, each one a recorded Delivery.

One session per destination; each file's outcome is recorded on its own
Delivery row (sent, skipped or failed, with the time and the error), so a
retry can send exactly what did not arrive (redelivery.py) and a resend
adds new rows (runs/resend.py). The protocol clients upload under a
temporary name and rename, so a vendor never sees a partial file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from django.utils import timezone

from connections.clients import ClientError, deadline
from connections.clients.base import IfExists
from connections.kinds import client_for
from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunFile, Stage
from runs.pipeline.context import RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.log import RunLogger
from tasks.models import Destination, Task

STAGE = Stage.DELIVERY
logger = logging.getLogger(__name__)


def describe(destination: Destination) -> str:
    folder = destination.folder or "(base folder)"
    return f"{destination.get_kind_display()} {destination.connection} {folder}"


def destinations_of(task: Task) -> list[Destination]:
    return list(task.destinations.select_related("connection__organization"))


def create_uploads(run: Run, pairs: Iterable[tuple[RunFile, Destination]], *, resent_by=None) -> list[Delivery]:
    """One pending Delivery per (file, destination), recorded before anything is sent."""
    return [
        Delivery.objects.create(
            run=run, kind=DeliveryKind.UPLOAD, file=record, destination=destination,
            target=describe(destination), resent_by=resent_by,
        )
        for record, destination in pairs
    ]


def pending_uploads(ctx: RunContext, files: list[RunFile]) -> list[Delivery]:
    """One Delivery per file and destination (destinations in their configured order)."""
    return create_uploads(ctx.run, [(f, d) for d in destinations_of(ctx.task) for f in files])


def _finish(delivery: Delivery, status: str, error: str = "") -> None:
    delivery.status, delivery.error, delivery.at = status, error, timezone.now()
    delivery.save(update_fields=["status", "error", "at"])


def _upload_one(log: RunLogger, client, destination: Destination, delivery: Delivery, path: Path) -> None:
    record = delivery.file
    if destination.skip_empty and record.is_empty:
        _finish(delivery, DeliveryStatus.SKIPPED, "empty file not sent")
        log.info(STAGE, f"{record.name} is empty and the destination does not send empty files: not sent to {delivery.target}.")
        return
    result = client.upload(path, destination.folder, record.name, IfExists(destination.if_exists))
    if result.skipped:
        _finish(delivery, DeliveryStatus.SKIPPED, "file exists; the destination is set to skip")
        log.info(STAGE, f"{result.remote_path} already exists on {destination.connection}: skipped as configured.")
    else:
        _finish(delivery, DeliveryStatus.SENT)
        log.info(STAGE, f"Uploaded {record.name} ({record.size} bytes) to {result.remote_path} via {destination.connection}.")


def _fail_pending(log: RunLogger, deliveries: list[Delivery], error: Exception) -> None:
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.PENDING:
            _finish(delivery, DeliveryStatus.FAILED, log.mask(str(error)))


def deliver_to(log: RunLogger, destination: Destination, deliveries: list[Delivery], local: dict[int, Path]) -> list[ClientError]:
    """Upload through one session; returns the errors met (each failed file is recorded)."""
    errors: list[ClientError] = []
    try:
        with client_for(destination.connection) as client:
            for delivery in deliveries:
                try:
                    _upload_one(log, client, destination, delivery, local[delivery.file_id])
                except ClientError as exc:
                    exc = deadline.explained(exc, f"The upload of {delivery.file.name} to {delivery.target}")
                    _finish(delivery, DeliveryStatus.FAILED, log.mask(str(exc)))
                    log.error(STAGE, f"{delivery.file.name} → {delivery.target}: {exc}")
                    errors.append(exc)
    except ClientError as exc:
        # The session itself failed (connect, login, or closing): every file still pending shares the error.
        _fail_pending(log, deliveries, exc)
        log.error(STAGE, f"{describe(destination)}: {exc}")
        errors.append(exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected client error must still be recorded per file
        logger.exception("Delivery to %s failed unexpectedly", destination.pk)
        error = ClientError(f"Unexpected error delivering to {describe(destination)}: {type(exc).__name__}: {exc}")
        _fail_pending(log, deliveries, error)
        log.error(STAGE, str(error))
        errors.append(error)
    return errors


def send(log: RunLogger, deliveries: list[Delivery], local: dict[int, Path]) -> list[ClientError]:
    """Send pending upload deliveries, grouped by destination in the order given."""
    groups: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.destination_id, []).append(delivery)
    errors: list[ClientError] = []
    for group in groups.values():
        errors += deliver_to(log, group[0].destination, group, local)
    return errors


def outcome(deliveries: list[Delivery], errors: list[ClientError]) -> StageFailure | None:
    failed = [d for d in deliveries if d.status == DeliveryStatus.FAILED]
    if not failed:
        return None
    return StageFailure(
        STAGE, f"{len(failed)} of {len(deliveries)} deliveries failed; first: {failed[0].error}",
        # Worth a retry unless every failure was one that cannot heal.
        permanent=bool(errors) and all(exc.permanent for exc in errors),
    )


def deliver(ctx: RunContext, deliveries: list[Delivery], local: dict[int, Path]) -> None:
    """Send the deliveries; raises StageFailure when any of them failed."""
    errors = send(ctx.log, deliveries, local)
    ctx.delivery_errors.extend(errors)
    failure = outcome(deliveries, errors)
    if failure:
        raise failure


def run(ctx: RunContext) -> None:
    """The stage: every file the output stage stored, to every destination of the task."""
    uploads = pending_uploads(ctx, ctx.stored)
    if uploads:
        local = {record.pk: local.path for record, local in zip(ctx.stored, ctx.files, strict=True)}
        deliver(ctx, uploads, local)
    elif ctx.stored:
        ctx.log.info(STAGE, "The task has no destinations; the files are kept in Courier's file storage.")
