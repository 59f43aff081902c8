"""A retry after a delivery failure: send again only what did not arrive, from the stored files.

The source is not run again (SPEC §3.9): the earlier attempt's files are
already final and stored with their hashes, so the retry copies each one back
from file storage, checks its SHA-256, and uploads it to the destinations it
did not reach. New Delivery rows are recorded on the retry's own run; the
files stay with the run that made them.

Entry point: `redeliver(ctx) -> bool`, called by the runner before the
stages (runs/pipeline/runner.py `_stages`). It returns False, doing nothing,
when the run is not a retry of a delivery failure.
"""

from __future__ import annotations

from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunFile, Stage
from runs.pipeline import delivery
from runs.pipeline.context import RunContext
from runs.pipeline.output import fetch_stored
from tasks.models import Destination

DONE = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED)


def source_run(run: Run) -> Run | None:
    """The earlier attempt whose stored files this retry re-sends, or None when the run must start from its source.

    A chain of redelivery attempts has no files of its own, so the search goes
    back through failed deliveries to the run that made the files.
    """
    previous = run.retry_of
    seen = {run.pk}
    while previous is not None and previous.pk not in seen and previous.error_stage == Stage.DELIVERY:
        if previous.files.exists():
            return previous
        seen.add(previous.pk)
        previous = previous.retry_of
    return None


def output_files(run: Run) -> list[RunFile]:
    """The files a run delivered: its own, or for a redelivery attempt those of the run that made them."""
    files = list(run.files.all())
    if files:
        return files
    source = source_run(run)
    return list(source.files.all()) if source else []


def undelivered(source: Run) -> list[tuple[RunFile, Destination]]:
    """(file, destination) pairs that failed or never finished and have not arrived since, in their first order."""
    attempts = Delivery.objects.filter(kind=DeliveryKind.UPLOAD, file__run=source, destination__isnull=False)
    done = set(attempts.filter(status__in=DONE).values_list("file_id", "destination_id"))
    todo: dict[tuple[int, int], tuple[RunFile, Destination]] = {}
    for attempt in attempts.exclude(status__in=DONE).select_related("file", "destination__connection__organization").order_by("id"):
        key = (attempt.file_id, attempt.destination_id)
        if key not in done and key not in todo:
            todo[key] = (attempt.file, attempt.destination)
    return list(todo.values())


def _rows_of(source: Run) -> int | None:
    """Data rows in the stored files (a failed run does not record its row count)."""
    counts = list(source.files.values_list("rows", flat=True))
    return None if not counts or None in counts else sum(counts)


def redeliver(ctx: RunContext) -> bool:
    """Re-send what an earlier attempt did not deliver; False if this run is not such a retry.

    Raises StageFailure (stage "delivery") when a delivery fails again.
    """
    source = source_run(ctx.run)
    if source is None:
        return False
    ctx.rows = source.rows if source.rows is not None else _rows_of(source)
    todo = undelivered(source)
    log = ctx.log
    log.info(delivery.STAGE, f"Run {source.pk} made and stored the files; this attempt sends what it did not deliver, without running the source again.")
    if not todo:
        log.info(delivery.STAGE, "Nothing is left to deliver.")
        return True
    folder = ctx.workdir / "stored"
    folder.mkdir(exist_ok=True)
    local = {}
    for record, _ in todo:
        if record.pk not in local:
            local[record.pk] = fetch_stored(record, folder)
    log.info(delivery.STAGE, f"{len(todo)} deliver{'y' if len(todo) == 1 else 'ies'} to repeat: "
             + "; ".join(f"{record.name} → {delivery.describe(dest)}" for record, dest in todo) + ".")
    deliveries = delivery.create_uploads(ctx.run, todo)
    errors = delivery.send(log, deliveries, local)
    ctx.delivery_errors.extend(errors)
    failure = delivery.outcome(deliveries, errors)
    if failure:
        raise failure
    return True
