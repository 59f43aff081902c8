"""A stored output file read back as a table, for embedding in a success mail.

Reads CSV/text (with the task's delimiter, quoting, encoding and line
suffix), JSON lines and .xlsx. Reading stops at a size cap, counted in
characters of cell text, and the table says that it was cut: a mail that
would carry a million rows helps nobody and may not be delivered at all.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from runs.models import RunFile
from runs.pipeline.formats import cell_text, field_delimiter
from tasks.models import OutputType, Quoting, Task


@dataclass
class Table:
    name: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total: int | None = None  # data rows in the file, when known
    cut: bool = False
    note: str = ""  # why the file is not shown as a table


def _file_type(task: Task, record: RunFile) -> str | None:
    suffix = PurePosixPath(record.name).suffix.lower()
    if suffix in (".gpg", ".asc", ".zip"):
        return None
    if suffix == ".xlsx":
        return OutputType.XLSX
    if suffix == ".jsonl":
        return OutputType.JSONL
    if task.output_type in (OutputType.CSV, OutputType.TEXT, "") and record.rows is not None:
        return task.output_type or OutputType.CSV
    return None


def _delimited_rows(task: Task, raw) -> Iterator[list[str]]:
    text = io.TextIOWrapper(raw, encoding=task.output_encoding or "utf-8", errors="replace", newline="")
    delimiter = "," if task.output_type in (OutputType.CSV, "") else field_delimiter(task.output_delimiter)
    options = {"delimiter": delimiter}
    if task.output_quoting == Quoting.NONE:
        options.update(quoting=csv.QUOTE_NONE, escapechar=task.output_escape_char or None)
    suffix = task.output_line_suffix
    for row in csv.reader(text, **options):
        if suffix and row and row[-1].endswith(suffix):
            row[-1] = row[-1][: -len(suffix)]
        yield row


def _jsonl_rows(raw, headers: list[str]) -> Iterator[list[str]]:
    for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace"):
        if not line.strip():
            continue
        obj = json.loads(line)
        if not headers:
            headers.extend(obj)
        yield ["" if obj.get(h) is None else cell_text(obj.get(h)) for h in headers]


def _xlsx_rows(raw) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(raw.read()), read_only=True, data_only=True)
    try:
        for values in book.worksheets[0].iter_rows(values_only=True):
            yield [cell_text(v) for v in values]
    finally:
        book.close()


def read_table(task: Task, record: RunFile, limit: int) -> Table:
    """The file as a table of at most about `limit` characters of cell text."""
    table = Table(name=record.name, total=record.rows)
    kind = _file_type(task, record)
    if kind is None:
        table.note = "not shown: it is not a table (encrypted, zipped or kept as is)"
        return table
    if kind == OutputType.XLSX and record.size > limit * 20:
        table.note = "not shown: the workbook is too large to read for a mail"
        return table
    with record.stored.open("rb") as raw:
        if kind == OutputType.JSONL:
            rows = _jsonl_rows(raw, table.headers)
        else:
            rows = _xlsx_rows(raw) if kind == OutputType.XLSX else _delimited_rows(task, raw)
            if task.source_headers and task.output_headers:
                table.headers = next(rows, [])
        _fill(table, rows, limit)
    return table


def _fill(table: Table, rows: Iterator[list[str]], limit: int) -> None:
    used = 0
    for row in rows:
        size = sum(len(v) for v in row) + len(row)
        if used + size > limit:
            table.cut = True
            return
        table.rows.append(row)
        used += size
