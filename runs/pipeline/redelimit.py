"""Re-writing a delimited source file with the task's output settings (e.g. comma CSV → pipe).

The file is read and written row by row through Python's csv module, so it
may be any size, and a quoted field keeps its delimiters, quotes and line
breaks (it is quoted again on the way out where the output needs it).
The file is read in the task's output encoding (a UTF-8 byte-order mark is
dropped); with "include column headers" its first line is the header row.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from runs.models import Stage
from runs.pipeline.context import LocalFile, RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.formats import field_delimiter, open_writer
from tasks.models import OutputType

STAGE = Stage.SOURCE
ROWS_PER_WRITE = 5000


def _reading_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.replace("_", "-").lower().startswith("utf-8") else encoding


def redelimit(ctx: RunContext, local: LocalFile) -> LocalFile:
    task = ctx.task
    if task.output_type == OutputType.KEEP:
        raise StageFailure(STAGE, "A source delimiter is set, but the output type “keep as is” cannot re-write the file.", permanent=True)
    delimiter = field_delimiter(task.source_delimiter)
    target = ctx.workdir / "source" / local.name
    target.parent.mkdir(exist_ok=True)
    with open(local.path, encoding=_reading_encoding(task.output_encoding), newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            rows = _copy(ctx, reader, target)
        except UnicodeDecodeError as exc:
            line = _undecodable_line(local.path, _reading_encoding(task.output_encoding))
            raise StageFailure(STAGE, f"{local.name} is not {task.output_encoding} text (line {line}: {exc.reason}).", permanent=True) from None
        except csv.Error as exc:
            raise StageFailure(STAGE, f"{local.name} line {reader.line_num} cannot be read as delimited text: {exc}.", permanent=True) from None
    ctx.log.info(STAGE, f"Re-wrote {local.name} with the output's delimiter: {rows} data row(s).")
    return LocalFile(path=target, name=local.name, rows=rows)


def _undecodable_line(path: Path, encoding: str) -> int:
    """The line holding the first byte that cannot be decoded.

    The text layer decodes in large chunks, so the reader's own line count
    may still point at an earlier line when decoding fails. (The encodings
    offered are ASCII-compatible, so splitting the bytes at LF is safe.)
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                return number
    return max(number, 1)  # the file ends in the middle of a character


def _copy(ctx: RunContext, reader, target: Path) -> int:
    first = next(reader, None)
    columns = first if (ctx.task.source_headers and first is not None) else []
    writer = open_writer(ctx.task, target, columns)
    try:
        batch = [first] if (first is not None and not columns) else []
        for row in reader:
            batch.append(row)
            if len(batch) >= ROWS_PER_WRITE:
                writer.write(batch)
                batch = []
        writer.write(batch)
    finally:
        writer.close()
    return writer.rows
