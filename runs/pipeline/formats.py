"""Writers that turn rows into an output file, batch by batch.

Every writer is opened with the column names, takes `write(rows)` for each
batch the source streams, counts data rows (the header excluded) and is
closed once. Nothing is held in memory beyond one batch.

Decisions (pinned by tests/test_output_formats.py):

- Values are written as the source gave them: strings are never trimmed,
  quotes in them are never stripped. Decimals are written in fixed-point
  notation with the scale the driver reported (`0.00`, never `0E-2`), bytes
  as hexadecimal, everything else as its Python text (`str`).
- NULL is an empty field — nothing between the delimiters, in every quoting
  mode — so a NULL stays distinguishable from an empty string when quoting
  all fields (`,""` is an empty string, `,,` is NULL).
- Quoting *minimal* quotes a field holding the delimiter, a double quote, CR
  or LF (the stdlib csv writer of Python 3.11 misses a lone CR when lines end
  in LF; FastDelimited, which uses it for speed, works around that).
  *Non-numeric* leaves
  int, float and Decimal unquoted; bool counts as text. *None* never quotes:
  the escape character is put before a delimiter, CR, LF or itself; without an
  escape character such a value fails the run, naming row and column, rather
  than silently shifting the vendor's columns.
- The characters appended to each line go before the line ending, and are
  not special inside values.
- An unencodable character fails the run naming the row, the column and the
  character (U+ code point), never the value.
- JSON lines are UTF-8 with LF, one object per row, whatever the text options
  say (that is what the format defines); numbers stay numbers.
- Excel is a real .xlsx written in openpyxl's write-only (streaming) mode.
  Strings stay strings: a value such as `=1+1` or `#N/A` is text, not a
  formula or error. A value Excel cannot hold (control characters, more than
  32,767 characters, more than 1,048,576 rows) fails the run naming where.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from types import SimpleNamespace
from typing import BinaryIO

from runs.models import Stage
from runs.pipeline.errors import StageFailure
from tasks.models import OutputType, Quoting, Task

STAGE = Stage.OUTPUT
EXTENSIONS = {OutputType.CSV: ".csv", OutputType.TEXT: ".txt", OutputType.XLSX: ".xlsx", OutputType.JSONL: ".jsonl"}
ENDINGS = {"lf": "\n", "crlf": "\r\n"}


class Unwritable(ValueError):
    """One value that cannot be written; the writer adds where it is."""


def field_delimiter(text: str) -> str:
    """The delimiter as typed in a form: `\\t` (or `tab`) means tab."""
    value = {"\\t": "\t", "tab": "\t"}.get(text.strip().lower(), text)
    if len(value) != 1:
        raise StageFailure(STAGE, f"The delimiter “{text}” must be a single character (or \\t for tab).", permanent=True)
    if value in '"\r\n':
        raise StageFailure(STAGE, f"The delimiter {value!r} cannot be used: it would break the lines or the quoting.", permanent=True)
    return value


def cell_text(value) -> str:
    """The text of one value, as the source gave it; NULL is empty."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is Decimal:
        return format(value, "f")
    if kind in (bytes, bytearray, memoryview):
        return bytes(value).hex()
    return str(value)


def is_number(value) -> bool:
    return type(value) in (int, float, Decimal)


def _where(columns: Sequence[str], row: int | None, index: int) -> str:
    place = "the header" if row is None else f"row {row}"
    column = columns[index] if index < len(columns) and columns[index] else f"#{index + 1}"
    return f"{place}, column “{column}”"


# --------------------------------------------------------------------------
# CSV and delimited text
# --------------------------------------------------------------------------

def field_formatter(delimiter: str, quoting: str, escape: str) -> Callable[[object], str]:
    """A function turning one value into its field text under the chosen quoting."""
    special = re.compile("[" + re.escape(delimiter + '"\r\n') + "]").search

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    if quoting == Quoting.ALL:
        return lambda v: "" if v is None else quoted(cell_text(v))
    if quoting == Quoting.NONNUMERIC:
        return lambda v: "" if v is None else (cell_text(v) if is_number(v) else quoted(cell_text(v)))
    if quoting == Quoting.NONE:
        return _unquoted_formatter(delimiter, escape)

    def minimal(value, _str=str) -> str:
        # The common case (a string needing no quotes) takes two cheap steps; this runs once per cell.
        text = value if type(value) is _str else cell_text(value)
        return quoted(text) if special(text) else text

    return minimal


def _unquoted_formatter(delimiter: str, escape: str) -> Callable[[object], str]:
    if not escape:
        clash = re.compile("[" + re.escape(delimiter + "\r\n") + "]")

        def refuse(value) -> str:
            text = cell_text(value)
            found = clash.search(text)
            if found:
                what = "the delimiter" if found.group() == delimiter else "a line break"
                raise Unwritable(f"holds {what}, and quoting is “none” without an escape character")
            return text

        return refuse
    needs_escape = re.compile("[" + re.escape(delimiter + escape + "\r\n") + "]")
    return lambda v: needs_escape.sub(lambda m: escape + m.group(), cell_text(v))


# Types the csv module turns into text exactly as cell_text does (their str()).
_AS_IS = frozenset({str, int, float, bool, datetime, date, time})
_NONE = type(None)
_AS_IS_OR_NONE = _AS_IS | {_NONE}
_DECIMAL_OR_NONE = frozenset({Decimal, _NONE})
_CRLF = "\r\n"


class FastDelimited:
    """Minimal and all quoting through the csv module's C writer, byte for byte as field_formatter writes.

    Formatting every cell in Python made the writer the slowest part of an
    extract (bench/extract.py). Here Python looks only at whole batches and
    columns: the value types are gathered in C, and only columns the csv
    module would write differently are converted (Decimals in exponent
    notation, bytes, other types; NULLs under "all"). Where the csv module
    differs from field_formatter:

    - it quotes a lone CR only when it ends lines with CRLF (Python 3.11): a
      batch holding a CR is written that way and the real ending put in after;
    - it writes a lone empty field as `""`: rows of fewer than two fields
      take the cell-by-cell path (`text` answers None);
    - under "all" it quotes NULL like an empty string: NULL is written as a
      marker whose quoted form is removed after, unless a value holds the
      marker too (then the cell-by-cell path);
    - rows of unequal length that need converting take the cell-by-cell path.
    """

    MODES = {Quoting.MINIMAL: csv.QUOTE_MINIMAL, Quoting.ALL: csv.QUOTE_ALL}

    def __init__(self, delimiter: str, quoting: str, end: str) -> None:
        self._lines: list[str] = []
        sink = SimpleNamespace(write=self._lines.append)
        options = {"delimiter": delimiter, "quotechar": '"', "doublequote": True, "quoting": self.MODES[quoting]}
        self._writers = [csv.writer(sink, lineterminator=_CRLF, **options)]
        if end.endswith("\n") and not end.endswith(_CRLF):
            # Lines ending in LF are written as such first (no ending to swap after); the text
            # is kept only if it holds no CR at all, as the LF writer does not quote a lone CR.
            self._writers.insert(0, csv.writer(sink, lineterminator="\n", **options))
        self._end = end
        # NULL under "all": a character other than the delimiter, so that its quoted form cannot overlap a value's.
        self._null = ("\x00" if delimiter != "\x00" else "\x01") if quoting == Quoting.ALL else None
        # What the csv module writes as is: NULL too under minimal quoting (an empty field).
        self._as_is = _AS_IS if self._null else _AS_IS_OR_NONE

    def text(self, rows: list) -> str | None:
        """The lines for `rows`, or None when this batch must take the cell-by-cell path."""
        if min(map(len, rows), default=0) < 2:
            return None
        # The distinct rows of value types, gathered in C: usually one or two per batch.
        signatures = set(map(tuple, map(map, repeat(type), rows)))
        if len(set(map(len, signatures))) != 1:
            # Rows of unequal length (a re-delimited file) are written as they are, or not here at all.
            return self._write(lambda: rows, 0) if all(set(sig) <= self._as_is for sig in signatures) else None
        kinds = [set(column) for column in zip(*signatures)]
        changes = {index: found for index, found in enumerate(kinds) if not found <= self._as_is}
        changes = {index: found for index, found in changes.items() if not self._plain_decimals(rows, index, found)}
        if not changes:
            return self._write(lambda: rows, 0)
        columns = list(zip(*rows))
        nulls = sum(columns[index].count(None) for index, found in changes.items() if _NONE in found) if self._null else 0
        for index, found in changes.items():
            columns[index] = self._column(columns[index], found)
        return self._write(lambda: zip(*columns), nulls)

    def _plain_decimals(self, rows: list, index: int, found: set) -> bool:
        """Whether the csv module's own str() of this column's Decimals is their fixed-point text.

        str() switches to exponent notation (1E+3, 1E-7) only for very large or
        small exponents, and then says so with an "E"; NULLs stay as they are
        under minimal quoting.
        """
        if self._null or not found <= _DECIMAL_OR_NONE:
            return False
        return "E" not in "".join(map(str, map(itemgetter(index), rows)))

    def _write(self, rows: Callable[[], Iterable[Sequence]], nulls: int) -> str | None:
        for writer in self._writers:
            self._lines.clear()
            writer.writerows(rows())
            text = "".join(self._lines)
            if "\r" not in text:
                break
        terminator = writer.dialect.lineterminator
        lines = self._lines
        if nulls:
            marked = '"' + self._null + '"'
            if text.count(marked) != nulls:
                return None  # a value holds the marker itself
            text = text.replace(marked, "")
        if self._end == terminator:
            return text
        if text.count(terminator) == len(lines):
            return text.replace(terminator, self._end)
        # A value holds the line break: give each line its ending.
        if nulls:
            lines = [line.replace(marked, "") for line in lines]
        return "".join([line[: -len(terminator)] + self._end for line in lines])

    def _column(self, column: tuple, kinds: set) -> list:
        null = self._null
        if kinds <= _DECIMAL_OR_NONE:
            return [null if v is None else format(v, "f") for v in column]
        if kinds <= _AS_IS_OR_NONE:
            return [null if v is None else v for v in column]
        return [null if v is None else cell_text(v) for v in column]


class DelimitedWriter:
    """CSV and delimited text, streamed to disk one batch at a time."""

    def __init__(self, task: Task, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self.rows = 0
        delimiter = "," if task.output_type in (OutputType.CSV, "") else field_delimiter(task.output_delimiter)
        escape = task.output_escape_char if task.output_quoting == Quoting.NONE else ""
        if escape and escape in (delimiter, '"', "\r", "\n"):
            raise StageFailure(STAGE, f"The escape character {escape!r} cannot also be the delimiter, a quote or a line break.", permanent=True)
        self._field = field_formatter(delimiter, task.output_quoting, escape)
        self._delimiter = delimiter
        self._end = task.output_line_suffix + ENDINGS.get(task.output_line_ending, "\n")
        self._encoding = task.output_encoding or "utf-8"
        try:
            self._end.encode(self._encoding)
        except UnicodeEncodeError:
            raise StageFailure(STAGE, f"The characters appended to each line ({task.output_line_suffix!r}) cannot be written in {self._encoding}.", permanent=True) from None
        quoting = task.output_quoting or Quoting.MINIMAL
        self._fast = FastDelimited(delimiter, quoting, self._end) if quoting in FastDelimited.MODES else None
        self._file = open(path, "w", encoding=self._encoding, errors="strict", newline="")  # noqa: SIM115
        if task.source_headers and task.output_headers and self.columns:
            # Column names are text whatever the quoting: str() keeps them quoted under "non-numeric".
            self._emit([[str(c) for c in self.columns]], header=True)

    def write(self, rows: Iterable[Sequence]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        self._emit(rows, header=False)
        self.rows += len(rows)

    def _emit(self, rows: list, header: bool) -> None:
        text = self._fast.text(rows) if self._fast else None
        if text is None:
            field, join, end = self._field, self._delimiter.join, self._end
            try:
                text = "".join([join(map(field, row)) + end for row in rows])
            except Unwritable:
                raise self._locate(rows, header, self._field) from None
        try:
            self._file.write(text)
        except UnicodeEncodeError:
            raise self._locate(rows, header, self._encodable) from None

    def _encodable(self, value) -> str:
        text = cell_text(value)
        try:
            text.encode(self._encoding)
        except UnicodeEncodeError as exc:
            char = exc.object[exc.start]
            raise Unwritable(f"holds the character {char!r} (U+{ord(char):04X}), which {self._encoding} cannot encode") from None
        return text

    def _locate(self, rows: list, header: bool, check: Callable[[object], str]) -> StageFailure:
        """The slow path, only after a failure: find the exact cell and say what is wrong with it."""
        for offset, row in enumerate(rows):
            for index, value in enumerate(row):
                try:
                    check(value)
                except Unwritable as exc:
                    where = _where(self.columns, None if header else self.rows + offset + 1, index)
                    return StageFailure(STAGE, f"The value in {where} cannot be written: it {exc}.", permanent=True)
        return StageFailure(STAGE, f"A line cannot be written in {self._encoding}.", permanent=True)

    def encoded(self) -> BinaryIO:
        """The file below the text layer, for lines already encoded as this writer writes them (runs/pipeline/pgcopy.py).

        The caller counts the rows it writes in `rows`.
        """
        self._file.flush()
        return self._file.buffer

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------
# JSON lines
# --------------------------------------------------------------------------

def json_value(value) -> str:
    """One JSON value; numbers keep their digits, dates are ISO 8601 strings."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind in (float, Decimal):
        finite = math.isfinite(value) if kind is float else value.is_finite()
        return (repr(value) if kind is float else format(value, "f")) if finite else json.dumps(str(value))
    if kind in (datetime, date, time):
        return json.dumps(value.isoformat())
    return json.dumps(cell_text(value), ensure_ascii=False)


def unique_keys(columns: Sequence[str]) -> list[str]:
    """Column names as object keys; a repeated name gets _2, _3 so no value is lost."""
    seen: set[str] = set()
    keys = []
    for index, name in enumerate(columns):
        key = str(name) or f"column_{index + 1}"
        candidate, n = key, 1
        while candidate in seen:
            n += 1
            candidate = f"{key}_{n}"
        seen.add(candidate)
        keys.append(candidate)
    return keys


class JsonLinesWriter:
    def __init__(self, task: Task, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self.rows = 0
        self._keys = [json.dumps(k, ensure_ascii=False) + ":" for k in unique_keys(self.columns)]
        self._file = open(path, "w", encoding="utf-8", errors="strict", newline="")  # noqa: SIM115

    def write(self, rows: Iterable[Sequence]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        keys = self._keys
        try:
            text = "".join(["{" + ",".join([k + json_value(v) for k, v in zip(keys, row)]) + "}\n" for row in rows])
            self._file.write(text)
        except UnicodeEncodeError:
            # Only lone surrogates from a broken driver get here: UTF-8 encodes everything else.
            raise StageFailure(STAGE, f"Rows {self.rows + 1}–{self.rows + len(rows)} hold text that is not valid Unicode.", permanent=True) from None
        self.rows += len(rows)

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------
# Excel
# --------------------------------------------------------------------------

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_TEXT = 32_767
_SHEET_FORBIDDEN = re.compile(r"[\\/?*\[\]:]")


def sheet_title(path: Path) -> str:
    return _SHEET_FORBIDDEN.sub("_", path.stem)[:31].strip("'") or "Data"


class XlsxWriter:
    """A real .xlsx in openpyxl's write-only mode: rows go to disk as they come."""

    def __init__(self, task: Task, path: Path, columns: list[str]) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        self._cell_class, self._illegal = WriteOnlyCell, ILLEGAL_CHARACTERS_RE
        self.path = path
        self.columns = list(columns)
        self.rows = 0
        if len(self.columns) > EXCEL_MAX_COLUMNS:
            raise StageFailure(STAGE, f"The result has {len(self.columns)} columns; an Excel sheet holds at most {EXCEL_MAX_COLUMNS}.", permanent=True)
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(sheet_title(path))
        self._lines = 0
        if task.source_headers and task.output_headers and self.columns:
            self._append([str(c) for c in self.columns], None)

    def write(self, rows: Iterable[Sequence]) -> None:
        for row in rows:
            self._append(row, self.rows + 1)
            self.rows += 1

    def _append(self, row: Sequence, number: int | None) -> None:
        if self._lines >= EXCEL_MAX_ROWS:
            raise StageFailure(STAGE, f"Row {number} does not fit: an Excel sheet holds at most {EXCEL_MAX_ROWS:,} rows (header included).", permanent=True)
        cells = []
        for index, value in enumerate(row):
            try:
                cells.append(self._value(value))
            except Unwritable as exc:
                raise StageFailure(STAGE, f"The value in {_where(self.columns, number, index)} cannot be written to Excel: it {exc}.", permanent=True) from None
        self._sheet.append(cells)
        self._lines += 1

    def _value(self, value):
        kind = type(value)
        if kind is str:
            return self._text(value)
        if kind in (datetime, time) and value.tzinfo is not None:
            # Excel has no time zones; the text keeps the offset the source gave.
            return self._text(str(value))
        if kind in (bytes, bytearray, memoryview):
            return self._text(cell_text(value))
        if value is None or kind in (int, float, Decimal, bool, datetime, date, time):
            return value
        return self._text(str(value))

    def _text(self, text: str):
        if len(text) > EXCEL_MAX_TEXT:
            raise Unwritable(f"is {len(text):,} characters long; an Excel cell holds at most {EXCEL_MAX_TEXT:,}")
        found = self._illegal.search(text)
        if found:
            raise Unwritable(f"holds the control character U+{ord(found.group()):04X}, which Excel files cannot contain")
        if text[:1] in ("=", "#"):
            # openpyxl would turn "=…" into a formula and "#N/A" into an error value.
            cell = self._cell_class(self._sheet, text)
            cell.data_type = "s"
            return cell
        return text

    def close(self) -> None:
        # Saving a write-only book twice is an error; an empty book still needs its sheet.
        if getattr(self, "_book", None) is not None:
            book, self._book = self._book, None
            book.save(self.path)


WRITERS = {OutputType.CSV: DelimitedWriter, OutputType.TEXT: DelimitedWriter, OutputType.XLSX: XlsxWriter, OutputType.JSONL: JsonLinesWriter}


def open_writer(task: Task, path: Path, columns: list[str]):
    """The writer for the task's output type (blank means CSV) — for query results and re-written files."""
    output_type = task.output_type or OutputType.CSV
    try:
        writer_class = WRITERS[output_type]
    except KeyError:
        raise StageFailure(
            STAGE, "The output type “Keep as is” passes files through unchanged; a query result needs CSV, text, Excel or JSON lines.",
            permanent=True,
        ) from None
    return writer_class(task, path, columns)
