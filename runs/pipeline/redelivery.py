"""A retry after a delivery failure: send again only what did not arrive, from the stored files.

The source is not run again (SPEC §3.9): the earlier attempt's files are
already final and stored with their hashes, so the retry copies each one back
from file storage, checks its SHA-256, and uploads it to the destinations it
did not reach. New Delivery rows are recorded on the retry's own run; the
files stay with the run that made them.

The runner (runs/runner.py) runs this stage alone, instead of source to
delivery, when `applies(run)`: the run retries a delivery failure of an
attempt that made and stored its files.
"""

from __future__ import annotations

from runs.models import Delivery, DeliveryKind, Run, RunFile, Stage
from runs.pipeline import delivery
from runs.pipeline.context import RunContext
from runs.pipeline.output import fetch_stored
from tasks.models import Destination

STAGE = Stage.DELIVERY


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


def applies(run: Run) -> bool:
    return source_run(run) is not None


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
    done = set(attempts.filter(status__in=Delivery.DONE).values_list("file_id", "destination_id"))
    todo: dict[tuple[int, int], tuple[RunFile, Destination]] = {}
    for attempt in attempts.exclude(status__in=Delivery.DONE).select_related("file", "destination__connection__organization").order_by("id"):
        key = (attempt.file_id, attempt.destination_id)
        if key not in done and key not in todo:
            todo[key] = (attempt.file, attempt.destination)
    return list(todo.values())


def _rows_of(source: Run) -> int | None:
    """Data rows in the stored files (a failed run does not record its row count)."""
    counts = list(source.files.values_list("rows", flat=True))
    return None if not counts or None in counts else sum(counts)


def run(ctx: RunContext) -> None:
    """The stage: re-send what an earlier attempt did not deliver; raises StageFailure when a delivery fails again."""
    source = source_run(ctx.run)
    ctx.rows = source.rows if source.rows is not None else _rows_of(source)
    todo = undelivered(source)
    log = ctx.log
    log.info(STAGE, f"Run {source.pk} made and stored the files; this attempt sends what it did not deliver, without running the source again.")
    if not todo:
        log.info(STAGE, "Nothing is left to deliver.")
        delivery.deliver(ctx, [], {}, source)
        return
    folder = ctx.workdir / "stored"
    folder.mkdir(exist_ok=True)
    local = {}
    for record, _ in todo:
        if record.pk not in local:
            local[record.pk] = fetch_stored(record, folder)
    log.info(STAGE, f"{len(todo)} deliver{'y' if len(todo) == 1 else 'ies'} to repeat: "
             + "; ".join(f"{record.name} → {delivery.describe(dest)}" for record, dest in todo) + ".")
    delivery.deliver(ctx, delivery.create_uploads(ctx.run, todo), local, source)
