"""A held run released by a person: its stored files go to the task's destinations, once.

The run was stopped by the row guard after its files were made and stored
(runs/pipeline/guard.py). Releasing it (runs/services.py `release_held`)
queues the same run again; the runner gives it this stage alone: the source
is not run again, each stored file is read back (its SHA-256 checked) and
delivered to every current destination, done files included. The run then
succeeds or fails like any other, with the usual follow-ups.
"""

from __future__ import annotations

from django.utils import timezone

from runs.models import Run, Stage
from runs.pipeline import delivery
from runs.pipeline.context import RunContext
from runs.pipeline.output import fetch_stored

STAGE = Stage.DELIVERY


def applies(run: Run) -> bool:
    """A run that was held and has been released (a discarded one is never claimed again)."""
    return run.decided_at is not None


def run(ctx: RunContext) -> None:
    held = ctx.run
    ctx.rows = held.rows
    who = held.decided_by or "someone"
    ctx.log.info(STAGE, f"Released by {who} at {timezone.localtime(held.decided_at):%Y-%m-%d %H:%M:%S}: "
                        "the held files are delivered now; the source is not run again.")
    files = list(held.files.all())
    destinations = delivery.destinations_of(ctx.task)
    if not files or not destinations:
        ctx.log.info(STAGE, "Nothing to deliver: " + ("the run stored no files." if not files else "the task has no destinations."))
        return
    folder = ctx.workdir / "stored"
    folder.mkdir(exist_ok=True)
    local = {record.pk: fetch_stored(record, folder) for record in files}
    uploads = delivery.create_uploads(held, [(record, d) for d in destinations for record in files])
    delivery.deliver(ctx, uploads, local)
