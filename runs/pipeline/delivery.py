"""The delivery stage: every stored file to every destination, each one a recorded Delivery."""

from __future__ import annotations

from pathlib import Path

from django.utils import timezone

from connections.clients import ClientError, client_for
from connections.clients.base import IfExists
from runs.models import Delivery, DeliveryKind, DeliveryStatus, RunFile
from runs.pipeline.context import RunContext
from runs.pipeline.errors import StageFailure
from tasks.models import Destination

STAGE = "delivery"


def pending_uploads(ctx: RunContext, files: list[RunFile]) -> list[Delivery]:
    """One Delivery per file and destination; a retry finds the rows still undelivered."""
    deliveries = []
    for destination in ctx.task.destinations.select_related("connection__organization"):
        for record in files:
            deliveries.append(
                Delivery.objects.create(
                    run=ctx.run, kind=DeliveryKind.UPLOAD, file=record, destination=destination,
                    target=describe(destination),
                )
            )
    return deliveries


def describe(destination: Destination) -> str:
    folder = destination.folder or "(base folder)"
    return f"{destination.get_kind_display()} {destination.connection} {folder}"


def _finish(delivery: Delivery, status: str, error: str = "") -> None:
    delivery.status, delivery.error, delivery.at = status, error, timezone.now()
    delivery.save(update_fields=["status", "error", "at"])


def deliver_to(ctx: RunContext, destination: Destination, deliveries: list[Delivery], local: dict[int, Path]) -> None:
    """Upload through one session per destination; each file's outcome is recorded on its own."""
    try:
        with client_for(destination.kind).session(destination.connection) as client:
            for delivery in deliveries:
                _upload_one(ctx, client, destination, delivery, local[delivery.file_id])
    except ClientError as exc:
        # The session itself failed: every file still pending shares the error.
        for delivery in deliveries:
            if delivery.status == DeliveryStatus.PENDING:
                _finish(delivery, DeliveryStatus.FAILED, ctx.log.mask(str(exc)))
        ctx.log.error(STAGE, f"{describe(destination)}: {exc}")
        ctx.delivery_errors.append(exc)


def _upload_one(ctx: RunContext, client, destination: Destination, delivery: Delivery, path: Path) -> None:
    record = delivery.file
    if destination.skip_empty and record.is_empty:
        _finish(delivery, DeliveryStatus.SKIPPED, "empty file not sent")
        ctx.log.info(STAGE, f"{record.name} is empty and the destination does not send empty files: not sent to {delivery.target}.")
        return
    try:
        result = client.upload(path, destination.folder, record.name, IfExists(destination.if_exists))
    except ClientError as exc:
        _finish(delivery, DeliveryStatus.FAILED, ctx.log.mask(str(exc)))
        ctx.log.error(STAGE, f"{record.name} → {delivery.target}: {exc}")
        ctx.delivery_errors.append(exc)
        return
    if result.skipped:
        _finish(delivery, DeliveryStatus.SKIPPED, "file exists; the destination is set to skip")
        ctx.log.info(STAGE, f"{result.remote_path} already exists: skipped as configured.")
    else:
        _finish(delivery, DeliveryStatus.SENT)
        ctx.log.info(STAGE, f"Uploaded {record.name} ({record.size} bytes) to {result.remote_path} via {destination.connection}.")


def run(ctx: RunContext, deliveries: list[Delivery], local: dict[int, Path]) -> None:
    by_destination: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_destination.setdefault(delivery.destination_id, []).append(delivery)
    destinations = {d.pk: d for d in ctx.task.destinations.select_related("connection__organization")}
    for destination_id, group in by_destination.items():
        deliver_to(ctx, destinations[destination_id], group, local)
    failed = [d for d in deliveries if d.status == DeliveryStatus.FAILED]
    if failed:
        raise StageFailure(
            STAGE, f"{len(failed)} of {len(deliveries)} deliveries failed; first: {failed[0].error}",
            # Worth a retry unless every failure was one that cannot heal.
            permanent=all(exc.permanent for exc in ctx.delivery_errors),
        )
