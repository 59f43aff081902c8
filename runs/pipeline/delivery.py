"""The delivery stage: every stored file to every destination, each one a recorded Delivery.

One session per destination; each file's outcome is recorded on its own
Delivery row (sent, skipped or failed, with the time and the error), so a
retry can send exactly what did not arrive (redelivery.py) and a resend
adds new rows (runs/resend.py). The protocol clients upload under a
temporary name, check the server's size and rename, so a vendor never sees
a partial file; each Delivery records whether the size was verified.

A destination may ask for a done file: once every file of the run has
arrived there (in this attempt or an earlier one), a marker named by its
pattern is written beside them, empty or holding a manifest (name, size,
SHA-256 per line). `{name}` in the pattern makes one marker per file. A
destination where a file failed gets none; a retry that completes it does.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone

from connections.clients import ClientError, deadline
from connections.clients.base import IfExists
from connections.kinds import client_for
from projects.parameters import ParameterError, check_file_name, substitute
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


def create_uploads(run: Run, pairs: Iterable[tuple[RunFile, Destination]], **fields) -> list[Delivery]:
    """One Delivery per (file, destination), recorded before anything is sent: pending unless `fields` say otherwise."""
    return [
        Delivery.objects.create(
            run=run, kind=DeliveryKind.UPLOAD, file=record, destination=destination, target=describe(destination), **fields,
        )
        for record, destination in pairs
    ]


def pending_uploads(ctx: RunContext, files: list[RunFile]) -> list[Delivery]:
    """One Delivery per file and destination (destinations in their configured order)."""
    return create_uploads(ctx.run, [(f, d) for d in destinations_of(ctx.task) for f in files])


def _finish(delivery: Delivery, status: str, error: str = "", *, verified: bool = False) -> None:
    delivery.status, delivery.error, delivery.at, delivery.verified = status, error, timezone.now(), verified
    delivery.save(update_fields=["status", "error", "at", "verified"])


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
        _finish(delivery, DeliveryStatus.SENT, verified=result.verified)
        log.info(STAGE, f"Uploaded {record.name} ({record.size} bytes) to {result.remote_path} via {destination.connection}; {_checked(result)}.")


def _checked(result) -> str:
    return "size verified before the rename" if result.verified else "the server cannot report sizes, so the size was not verified"


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


def deliver(ctx: RunContext, deliveries: list[Delivery], local: dict[int, Path], source: Run | None = None) -> None:
    """Send the deliveries, then the done files of every destination that now has all files of `source` (this run).

    Raises StageFailure when any upload or done file failed.
    """
    errors = send(ctx.log, deliveries, local)
    done = write_done_files(ctx, source or ctx.run)
    errors += done.errors
    ctx.delivery_errors.extend(errors)
    failure = outcome(deliveries + done.records, errors)
    if failure:
        raise failure


# --------------------------------------------------------------------------
# Done files
# --------------------------------------------------------------------------

@dataclass
class DoneFiles:
    """The done-file deliveries of one attempt and the errors they met."""

    records: list[Delivery] = field(default_factory=list)
    errors: list[ClientError] = field(default_factory=list)


def manifest_line(record: RunFile) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([record.name, record.size, record.sha256])
    return out.getvalue()


def done_file_name(pattern: str, ctx: RunContext, file_name: str = "") -> str:
    """The pattern with parameters and dates filled in, and `{name}` replaced by the file's name as it is."""
    try:
        pieces = [substitute(piece, ctx.params, ctx.at) for piece in pattern.split("{name}")]
        return check_file_name(file_name.join(pieces))
    except ParameterError as exc:
        raise StageFailure(STAGE, f"The done file name “{pattern}” cannot be made: {exc}", permanent=True) from None


def done_files_for(destination: Destination, ctx: RunContext, arrived: list[RunFile]) -> list[tuple[str, str]]:
    """(name, content) of each done file: one per file with `{name}` in the pattern, else one for them all."""
    def content(records: list[RunFile]) -> str:
        return "".join(manifest_line(r) for r in records) if destination.done_manifest else ""

    if "{name}" in destination.done_file:
        return [(done_file_name(destination.done_file, ctx, r.name), content([r])) for r in arrived]
    return [(done_file_name(destination.done_file, ctx), content(arrived))]


def _arrival(source: Run, destination: Destination) -> tuple[list[RunFile], bool]:
    """The files of `source` sent to `destination` (in any attempt), and whether every one of them is there or skipped."""
    files = list(source.files.all())
    uploads = Delivery.objects.filter(kind=DeliveryKind.UPLOAD, file__run=source, destination=destination)
    done = set(uploads.filter(status__in=Delivery.DONE).values_list("file_id", flat=True))
    sent = set(uploads.filter(status=DeliveryStatus.SENT).values_list("file_id", flat=True))
    return [f for f in files if f.pk in sent], all(f.pk in done for f in files)


def _done_already(source: Run, destination: Destination) -> bool:
    attempts = Run.objects.filter(pk=source.pk) | Run.objects.filter(deliveries__file__run=source)
    return Delivery.objects.filter(
        kind=DeliveryKind.DONE_FILE, destination=destination, status=DeliveryStatus.SENT, run__in=attempts,
    ).exists()


def write_done_files(ctx: RunContext, source: Run) -> DoneFiles:
    """Write the done files of every destination that has all files of `source` and no done file yet."""
    result = DoneFiles()
    for destination in destinations_of(ctx.task):
        if not destination.done_file or _done_already(source, destination):
            continue
        arrived, complete = _arrival(source, destination)
        if not complete:
            ctx.log.warning(STAGE, f"No done file on {describe(destination)}: not every file arrived there.")
            continue
        if not arrived:
            ctx.log.info(STAGE, f"No done file on {describe(destination)}: no file was sent there.")
            continue
        _send_done_files(ctx, destination, done_files_for(destination, ctx, arrived), result)
    return result


def _send_done_files(ctx: RunContext, destination: Destination, files: list[tuple[str, str]], result: DoneFiles) -> None:
    folder = ctx.workdir / "done" / str(destination.pk)
    folder.mkdir(parents=True, exist_ok=True)
    records = [Delivery.objects.create(run=ctx.run, kind=DeliveryKind.DONE_FILE, destination=destination,
                                       target=f"{describe(destination)}: {name}"[:1000]) for name, _ in files]
    result.records += records
    try:
        with client_for(destination.connection) as client:
            for record, (name, content) in zip(records, files, strict=True):
                (folder / name).write_bytes(content.encode())
                uploaded = client.upload(folder / name, destination.folder, name, IfExists(destination.if_exists))
                status = DeliveryStatus.SKIPPED if uploaded.skipped else DeliveryStatus.SENT
                _finish(record, status, "done file exists; the destination is set to skip" if uploaded.skipped else "",
                        verified=uploaded.verified)
                ctx.log.info(STAGE, f"Done file {uploaded.remote_path} written on {destination.connection} "
                                    f"({len(content.splitlines())} manifest line(s); {_checked(uploaded)}).")
    except ClientError as exc:
        _fail_pending(ctx.log, records, exc)
        ctx.log.error(STAGE, f"Done file on {describe(destination)}: {exc}")
        result.errors.append(exc)


def run(ctx: RunContext) -> None:
    """The stage: every file the output stage stored, to every destination of the task."""
    uploads = pending_uploads(ctx, ctx.stored)
    if uploads:
        deliver(ctx, uploads, ctx.local_paths())
    elif ctx.stored:
        ctx.log.info(STAGE, "The task has no destinations; the files are kept in Courier's file storage.")
