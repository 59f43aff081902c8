"""Writers that turn rows into an output file, batch by batch."""

from __future__ import annotations

import csv
from pathlib import Path

from runs.pipeline.errors import StageFailure
from tasks.models import OutputType, Quoting, Task

EXTENSIONS = {OutputType.CSV: ".csv", OutputType.TEXT: ".txt", OutputType.XLSX: ".xlsx", OutputType.JSONL: ".jsonl"}
QUOTING = {
    Quoting.MINIMAL: csv.QUOTE_MINIMAL,
    Quoting.ALL: csv.QUOTE_ALL,
    Quoting.NONNUMERIC: csv.QUOTE_NONNUMERIC,
    Quoting.NONE: csv.QUOTE_NONE,
}


def field_delimiter(text: str) -> str:
    """The delimiter as typed in a form: `\\t` means tab."""
    value = {"\\t": "\t", "tab": "\t"}.get(text.strip().lower(), text)
    if len(value) != 1:
        raise StageFailure("output", f"The delimiter “{text}” must be a single character (or \\t for tab).", permanent=True)
    return value


def _cell(value):
    # NULL is an empty field; everything else is written as the driver gave it.
    return "" if value is None else value


class DelimitedWriter:
    """CSV and delimited text, streamed to disk."""

    def __init__(self, task: Task, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.rows = 0
        delimiter = "," if task.output_type == OutputType.CSV else field_delimiter(task.output_delimiter)
        ending = "\r\n" if task.output_line_ending == "crlf" else "\n"
        self._file = open(path, "w", encoding=task.output_encoding, newline="", errors="strict")  # noqa: SIM115
        options = {
            "delimiter": delimiter,
            "quoting": QUOTING[task.output_quoting],
            "lineterminator": task.output_line_suffix + ending,
        }
        if task.output_quoting == Quoting.NONE:
            options["escapechar"] = task.output_escape_char or "\\"
        self._writer = csv.writer(self._file, **options)
        self._encoding = task.output_encoding
        if task.source_headers and task.output_headers and columns:
            self._write([columns], header=True)

    def write(self, rows: list[tuple]) -> None:
        self._write([[_cell(v) for v in row] for row in rows])
        self.rows += len(rows)

    def _write(self, rows: list, header: bool = False) -> None:
        try:
            self._writer.writerows(rows)
        except UnicodeEncodeError:
            raise self._encoding_failure(rows, header) from None
        except csv.Error as exc:
            raise StageFailure("output", f"Row {self.rows + 1} cannot be written: {exc}.", permanent=True) from None

    def _encoding_failure(self, rows: list, header: bool) -> StageFailure:
        for offset, row in enumerate(rows):
            for index, value in enumerate(row):
                try:
                    str(value).encode(self._encoding)
                except UnicodeEncodeError as exc:
                    where = "the header" if header else f"row {self.rows + offset + 1}"
                    column = self.columns[index] if index < len(self.columns) else index + 1
                    char = exc.object[exc.start]
                    return StageFailure(
                        "output",
                        f"The character {char!r} (U+{ord(char):04X}) in {where}, column “{column}” "
                        f"cannot be written in {self._encoding}.",
                        permanent=True,
                    )
        return StageFailure("output", f"The output cannot be written in {self._encoding}.", permanent=True)

    def close(self) -> None:
        self._file.close()


WRITERS = {OutputType.CSV: DelimitedWriter, OutputType.TEXT: DelimitedWriter}


def open_writer(task: Task, path: Path, columns: list[str]):
    output_type = task.output_type or OutputType.CSV
    try:
        writer_class = WRITERS[output_type]
    except KeyError:
        raise StageFailure("output", f"Output type “{output_type}” is not supported for query results yet.", permanent=True) from None
    return writer_class(task, path, columns)
