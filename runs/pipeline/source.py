"""The source stage: read the task's data into files in the run's folder."""

from __future__ import annotations

import time

from django.conf import settings

from connections.clients import ClientError
from connections.kinds import Reads, client_for
from connections.models import Dialect
from runs.models import Stage
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.formats import open_writer
from runs.pipeline.naming import output_file_name
from runs.pipeline.source_files import run_files
from runs.pipeline.source_ssh import run_ssh
from runs.ticker import Ticker
from tasks.code import CodeError, code_location, load_text
from tasks.models import CodeRole, SourceKind
from tasks.sqlbind import Batch, bind, bindings, bound_summary
from tasks.sqlbounds import SqlRefused, check_for
from tasks.sqltext import SqlError

STAGE = Stage.SOURCE


def source_code(ctx: RunContext) -> str:
    """The query or command text, before parameters."""
    try:
        text = load_text(ctx.task, CodeRole.SOURCE, warn=lambda msg: ctx.log.warning(STAGE, msg))
    except CodeError as exc:
        raise StageFailure(STAGE, str(exc), permanent=exc.permanent) from None
    if not text.strip():
        raise StageFailure(STAGE, "The task's query or command is empty.", permanent=True)
    return text


def prepared_sql(ctx: RunContext) -> list[Batch]:
    conn = ctx.task.source_connection
    try:
        batches = bind(source_code(ctx), conn.dialect or "other", ctx.params)
        check_for(conn, [b.sql for b in batches])  # every batch, before the first one runs
    except SqlRefused as exc:
        raise StageFailure(STAGE, str(exc), permanent=True) from None
    except SqlError as exc:
        raise StageFailure(STAGE, f"The query cannot be prepared: {exc}", permanent=True) from None
    if not batches:
        raise StageFailure(STAGE, "The task's query holds only comments and blank lines: there is nothing to run.", permanent=True)
    return batches


def run_database(ctx: RunContext) -> None:
    conn = ctx.task.source_connection
    batches = prepared_sql(ctx)
    name = output_file_name(ctx.task, ctx.params, ctx.at)
    path = ctx.workdir / "out" / name
    path.parent.mkdir(exist_ok=True)
    ctx.log.info(STAGE, f"Running the query on {conn} ({len(batches)} batch{'es' if len(batches) > 1 else ''}).")
    if bound := bindings(batches, ctx.params):
        ctx.log.info(STAGE, f"Bound as text: {bound_summary(bound)}.")
    counter = LiveRowCount(ctx, settings.COURIER_ROWCOUNT_SECONDS)
    with counter:
        rows = _export_copy(ctx, batches, path, counter)
        if rows is None:
            rows = _export_odbc(ctx, batches, path, counter)
    ctx.rows = rows
    ctx.log.info(STAGE, f"The query returned {rows} row{'s' if rows != 1 else ''}.")
    ctx.files.append(LocalFile(path=path, name=name, rows=rows))


def _export_copy(ctx: RunContext, batches: list[Batch], path, counter: LiveRowCount) -> int | None:
    """The PostgreSQL COPY fast path (runs/pipeline/pgcopy.py), or None where it does not apply."""
    if ctx.task.source_connection.dialect != Dialect.POSTGRESQL:
        return None
    # Late import: the fast path loads psycopg and libpq (0.15 s), which no other source needs:
    # every worker and `run_task --wait` would pay it at start-up (issue 20).
    from runs.pipeline import pgcopy

    return pgcopy.export(ctx, batches, path, counter, batch=settings.COURIER_FETCH_BATCH)


def _export_odbc(ctx: RunContext, batches: list[Batch], path, counter: LiveRowCount) -> int:
    writer_box = []

    def sink(columns, row_batches):
        writer = open_writer(ctx.task, path, columns)
        writer_box.append(writer)
        ctx.log.info(STAGE, f"Result columns: {', '.join(columns)}.")
        for rows in row_batches:
            writer.write(rows)
            counter.update(writer.rows)

    try:
        found = client_for(ctx.task.source_connection).run_query([b.sql for b in batches], sink, batch=settings.COURIER_FETCH_BATCH,
                                                                 values=[b.values for b in batches])
    except ClientError as exc:
        raise StageFailure(STAGE, str(exc), permanent=exc.permanent) from None
    finally:
        for writer in writer_box:
            writer.close()
    if not found:
        raise StageFailure(STAGE, "The query returned no result set (only row counts); nothing to export.", permanent=True)
    return writer_box[0].rows


class LiveRowCount:
    """Writes the row count to the run log every few seconds while the query runs.

    A side thread, so the count also appears while the server is still
    working on the first rows and the fetch loop is blocked in the driver.
    Where that thread cannot write (inside a caller's transaction) the count
    is written between batches instead.
    """

    def __init__(self, ctx: RunContext, every: float) -> None:
        self.ctx = ctx
        self.every = every
        self.rows = 0
        self._last = time.monotonic()
        self._ticker = Ticker(every, self._write, name="courier-rowcount")

    def __enter__(self) -> LiveRowCount:
        self._ticker.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._ticker.stop()

    def update(self, rows: int) -> None:
        self.rows = rows
        if not self._ticker.running and time.monotonic() - self._last >= self.every:
            self._write()
            self._last = time.monotonic()

    def _write(self) -> None:
        self.ctx.log.info(STAGE, f"Query running: {self.rows} rows so far.")


def run_command(ctx: RunContext) -> None:
    run_ssh(ctx, source_code(ctx))


def run_python(ctx: RunContext) -> None:
    """No data source: the processing stage's script makes the data."""
    if code_location(ctx.task, CodeRole.PROCESSING) is None:
        raise StageFailure(STAGE, "A Python-script-only task needs a processing script, and this one has none.", permanent=True)
    ctx.log.info(STAGE, "No data source: the processing script makes the data.")


# By what the source does (connections/kinds.py).
RUNNERS = {
    Reads.QUERY: run_database,
    Reads.FILES: run_files,
    Reads.COMMAND: run_command,
}


def run(ctx: RunContext) -> None:
    task = ctx.task
    if task.source_kind == SourceKind.PYTHON:
        run_python(ctx)
    elif task.source_reads in RUNNERS:
        RUNNERS[task.source_reads](ctx)
    else:
        raise StageFailure(STAGE, f"The {task.get_source_kind_display()} source is not supported yet.", permanent=True)
