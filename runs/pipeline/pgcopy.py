"""The PostgreSQL fast path: `COPY (query) TO STDOUT`, writing exactly the bytes the ODBC path writes.

The ODBC path turns each value into a Python object (psqlodbc + pyodbc) and
back into text (runs/pipeline/formats.py); COPY writes the server's own text,
several times faster (bench/extract.py). Where the two texts differ, the
query is wrapped and that column cast so the server writes what Courier
would (measured with psqlodbc 13.02 and pinned by tests/test_pgcopy.py,
which compares both paths byte for byte on random rows of every type below):

- float8 and float4 (and money, a float to pyodbc) in Python's repr:
  `1.0`, `inf`, `nan`, 16 digits in fixed notation, the shortest digits of
  a large whole number (PostgreSQL writes every digit of one);
- booleans as psqlodbc gives them, `1`/`0`; UUIDs in capitals; bytea as hex;
- timestamps (timestamptz in the session's zone, as psqlodbc converts it)
  and times with their fraction in six digits, as `str(datetime)` does;
- under "minimal" quoting an empty string as an empty field (PostgreSQL
  quotes it to tell it from NULL; Courier writes both empty);
- "non-numeric" quoting: FORCE_QUOTE on every column Python does not hold as a number.

Everything else (numeric, integers, dates, intervals, JSON, arrays, network
types, …) is already the same text. The fast path is used automatically for
a PostgreSQL source with CSV or delimited text output; it steps aside, with a
log line saying why, for what it cannot match: a type not listed here,
quoting "none", an encoding other than UTF-8, a query in several batches, an
ODBC string with options it does not know, a query COPY cannot wrap. The
connection's "fast PostgreSQL export (COPY)" setting switches it off.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from connections.clients import ClientError, postgres
from runs.models import Stage
from runs.pipeline.context import RunContext
from runs.pipeline.errors import StageFailure
from runs.pipeline.formats import ENDINGS, field_delimiter, open_writer
from tasks.models import OutputType, Quoting
from tasks.sqlbind import Batch
from tasks.sqltext import PUNCT, TRIVIA, tokenize

STAGE = Stage.SOURCE


def _python_float(x: str) -> str:
    """SQL giving float8 `x` as Python's repr(float) writes it (PostgreSQL's own text, set to the shortest digits, otherwise)."""
    digits = f"replace(split_part(ltrim({x}::text, '-'), 'e', 1), '.', '')"
    # 1e15 <= |x| < 1e16: PostgreSQL writes 1.2345e+15, Python 1234500000000000.0
    fixed = (f"(CASE WHEN {x} < 0 THEN '-' ELSE '' END || rpad({digits}, 16, '0') || '.' "
             f"|| COALESCE(NULLIF(substr({digits}, 17), ''), '0'))")
    # |x| >= 1e16 is a whole number, which PostgreSQL writes with every digit: the shortest of 15, 16, 17
    # significant digits that reads back as x, as Python picks (guarded where the candidate overflows).
    shortest = (f"regexp_replace(ltrim(CASE WHEN abs({x}) >= 1.7976931348623155e308 THEN to_char({x}, '9.9999999999999999EEEE') "
                f"WHEN abs({x}) < 1.79769313486231e308 AND to_char({x}, '9.99999999999999EEEE')::float8 = {x} "
                f"THEN to_char({x}, '9.99999999999999EEEE') "
                f"WHEN to_char({x}, '9.999999999999999EEEE')::float8 = {x} THEN to_char({x}, '9.999999999999999EEEE') "
                f"ELSE to_char({x}, '9.9999999999999999EEEE') END), '\\.?0*e', 'e')")
    return (f"CASE WHEN abs({x}) < 1e15 THEN CASE WHEN {x} = trunc({x}) THEN {x}::text || '.0' ELSE {x}::text END "
            f"WHEN {x} = 'NaN' THEN 'nan' WHEN {x} = 'Infinity' THEN 'inf' WHEN {x} = '-Infinity' THEN '-inf' "
            f"WHEN abs({x}) < 1e16 THEN {fixed} ELSE {shortest} END")


def _six_digit_fraction(x: str) -> str:
    """SQL giving a timestamp's or time's text with its fraction in six digits, as str(datetime) writes it."""
    return f"CASE WHEN strpos({x}::text, '.') = 0 THEN {x}::text ELSE {x}::text || repeat('0', 6 - length({x}::text) + strpos({x}::text, '.')) END"


@dataclass(frozen=True)
class Cast:
    """How the fast path writes one PostgreSQL type."""

    sql: str = "{c}"  # the expression, {c} standing for the column
    number: bool = False  # Python holds it as a number: "non-numeric" quoting leaves it bare
    # Where its text can be empty: under "minimal" quoting that text is made NULL ({e} is the expression),
    # as COPY quotes an empty value to tell it from NULL and Courier writes both as an empty field.
    empty: str | None = None

    def expression(self, column: str, quoting: str) -> str:
        sql = self.sql.format(c=column)
        return self.empty.format(e=sql) if self.empty and quoting == Quoting.MINIMAL else sql


AS_TEXT = "NULLIF(({e})::text, '')"
SAME_TEXT, TEXT = Cast(), Cast(empty=AS_TEXT)
NUMBER, FLOAT = Cast(number=True), Cast(_python_float("{c}"), number=True)
# Built-in type OIDs (fixed across PostgreSQL versions) → how each is written.
CASTS: dict[int, Cast] = {
    21: NUMBER, 23: NUMBER, 20: NUMBER, 1700: NUMBER,  # int2, int4, int8, numeric
    26: Cast("{c}::int4", number=True),  # oid: psqlodbc reads it as a signed 32-bit integer (4294967295 is -1)
    701: FLOAT, 700: Cast(_python_float("{c}::text::float8"), number=True),  # float8; float4 (psqlodbc reads its text as a double)
    790: Cast(_python_float("{c}::numeric::float8"), number=True),  # money (a float to psqlodbc)
    16: Cast("{c}::int::text"),  # bool: psqlodbc's BoolsAsChar gives "1" and "0"
    25: TEXT, 1043: TEXT, 19: TEXT, 18: TEXT, 142: TEXT, 1560: TEXT, 1562: TEXT,  # text, varchar, name, "char", xml, bit, varbit
    1042: Cast(empty="CASE WHEN octet_length({e}) > 0 THEN {e} END"),  # char(n): a cast to text would drop its padding
    17: Cast("encode({c}, 'hex')", empty=AS_TEXT),  # bytea: bytes, written as hex
    2950: Cast("upper({c}::text)"),  # uuid: psqlodbc gives it in capitals
    1114: Cast(_six_digit_fraction("{c}")), 1184: Cast(_six_digit_fraction("{c}::timestamp")),  # timestamp(tz)
    1083: Cast(_six_digit_fraction("{c}")),  # time
    1082: SAME_TEXT, 1266: SAME_TEXT, 1186: SAME_TEXT,  # date, timetz, interval
    2951: SAME_TEXT, 114: SAME_TEXT, 3802: SAME_TEXT, 869: SAME_TEXT, 650: SAME_TEXT, 829: SAME_TEXT, 774: SAME_TEXT,
    # Arrays come as PostgreSQL's text: bool, int2, int4, int8, float4, float8, numeric, text, varchar,
    # bpchar, date, time, timestamp, timestamptz, interval, bytea, json, jsonb.
    **dict.fromkeys((1000, 1005, 1007, 1016, 1021, 1022, 1231, 1009, 1015, 1014, 1182, 1183, 1115, 1185, 1187, 1001, 199, 3807),
                    SAME_TEXT),
}


@dataclass(frozen=True)
class Layout:
    """The task's CSV or delimited text settings, as COPY writes them."""

    delimiter: str
    quoting: str
    end: bytes


def layout(task) -> Layout | str:
    """The task's output as COPY can write it, or why it cannot."""
    quoting = task.output_quoting or Quoting.MINIMAL
    if quoting == Quoting.NONE:
        return "quoting “none” escapes values, which COPY's CSV cannot"
    try:
        encoding = codecs.lookup(task.output_encoding or "utf-8").name
    except LookupError:
        encoding = task.output_encoding
    if encoding != "utf-8":
        return f"the output is {task.output_encoding}, and COPY is read as UTF-8"
    delimiter = "," if task.output_type in (OutputType.CSV, "") else field_delimiter(task.output_delimiter)
    if not delimiter.isascii():
        return "the delimiter is not an ASCII character"
    if quoting == Quoting.NONNUMERIC and (delimiter.isalnum() or delimiter in ".+-"):
        return "under “non-numeric” quoting a number holding the delimiter stays bare, where COPY quotes it"
    end = (task.output_line_suffix + ENDINGS.get(task.output_line_ending, "\n")).encode()
    return Layout(delimiter, quoting, end)


def single_query(batches: list[Batch]) -> str | None:
    """The one statement to wrap, with its bound values written in as literals (None: several batches)."""
    if len(batches) != 1:
        return None
    batch = batches[0]
    tokens = tokenize(batch.sql, "postgresql")
    markers = [t for t in tokens if t.kind == PUNCT and t.text == "?"] if batch.values else []
    if len(markers) != len(batch.values):
        return None
    # psqlodbc sends a bound value untyped: a string literal is the same to the server.
    pieces, start = [], 0
    for marker, value in zip(markers, batch.values):
        pieces += [batch.sql[start:marker.start], _literal(value)]
        start = marker.end
    code = [t for t in tokens if t.kind not in TRIVIA]
    end = len(batch.sql)
    while code and code[-1].text == ";":  # a trailing ; cannot stand inside the wrapper's parentheses
        end = code.pop().start
    return "".join(pieces) + batch.sql[start:end]


def _literal(value: str) -> str:
    # An escape string reads the same whatever standard_conforming_strings says.
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def copy_statement(query: str, columns: list[postgres.Column], out: Layout) -> str:
    names = [f"c{i}" for i in range(1, len(columns) + 1)]
    casts = [CASTS[column.type_oid] for column in columns]
    select = ", ".join(f"{cast.expression(name, out.quoting)} AS {name}" for cast, name in zip(casts, names))
    options = ["FORMAT csv", f"DELIMITER {_literal(out.delimiter)}"]
    if out.quoting == Quoting.ALL:
        options.append("FORCE_QUOTE *")
    elif out.quoting == Quoting.NONNUMERIC and (quoted := [n for cast, n in zip(casts, names) if not cast.number]):
        options.append(f"FORCE_QUOTE ({', '.join(quoted)})")
    return f"COPY (SELECT {select} FROM (\n{query}\n) AS courier_query({', '.join(names)})) TO STDOUT WITH ({', '.join(options)})"


# --------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------


def applies(ctx: RunContext) -> bool:
    conn = ctx.task.source_connection
    return conn.dialect == "postgresql" and (ctx.task.output_type or OutputType.CSV) in (OutputType.CSV, OutputType.TEXT)


def export(ctx: RunContext, batches: list[Batch], path: Path, counter, *, batch: int) -> int | None:
    """Write the query's result to `path` through COPY and return its row count; None when the ODBC path must.

    Rows are written `batch` at a time, the live row count updated after each (as the ODBC path fetches
    them). Why it steps aside is logged. An error of the query itself, once COPY
    runs, fails the run as the ODBC path's would: running it again there
    would only take as long again.
    """
    if not applies(ctx):
        return None
    conn = ctx.task.source_connection
    reason = None if conn.copy_export else "it is switched off for this connection"
    out = layout(ctx.task) if reason is None else None
    reason = out if isinstance(out, str) else reason
    query = single_query(batches) if reason is None else None
    if reason is None and query is None:
        reason = "the query runs in several batches"
    try:
        settings = postgres.libpq_settings(conn.odbc) if reason is None else {}
    except postgres.Unsupported as exc:
        reason = str(exc)
    if reason is not None:
        ctx.log.info(STAGE, f"Reading through ODBC, not PostgreSQL's COPY: {reason}.")
        return None
    return _run(ctx, conn, settings, query, out, path, counter, batch)


def _run(ctx: RunContext, conn, settings: dict, query: str, out: Layout, path: Path, counter, batch: int) -> int | None:
    try:
        with postgres.session(conn, settings) as cnxn:
            try:
                columns = postgres.describe(cnxn, conn, query)
            except ClientError as exc:
                ctx.log.info(STAGE, f"Reading through ODBC, not PostgreSQL's COPY: COPY cannot wrap this query ({exc}).")
                return None
            if why := _unwritable(cnxn, columns):
                ctx.log.info(STAGE, f"Reading through ODBC, not PostgreSQL's COPY: {why}.")
                return None
            ctx.log.info(STAGE, "Reading through PostgreSQL's COPY (the same bytes as through ODBC, faster).")
            rows = postgres.copy_out(cnxn, conn, copy_statement(query, columns, out))
            return _write(ctx, columns, rows, out, path, counter, batch)
    except postgres.Unsupported as exc:
        ctx.log.info(STAGE, f"Reading through ODBC, not PostgreSQL's COPY: {exc}.")
        return None
    except ClientError as exc:
        raise StageFailure(STAGE, str(exc), permanent=exc.permanent) from None


def _unwritable(cnxn, columns: list[postgres.Column]) -> str | None:
    if not columns:
        return "the query returns no columns"
    unknown = [column for column in columns if column.type_oid not in CASTS]
    if not unknown:
        return None
    names = postgres.type_names(cnxn, sorted({column.type_oid for column in unknown}))
    listed = ", ".join(f"“{c.name}” ({names.get(c.type_oid, c.type_oid)})" for c in unknown[:5])
    return f"the fast path does not know how the ODBC driver writes the type of {listed}"


def _write(ctx: RunContext, columns: list[postgres.Column], rows: Iterator[memoryview], out: Layout, path: Path, counter,
           size: int) -> int:
    names = [column.name for column in columns]
    writer = open_writer(ctx.task, path, names)  # the header, written exactly as the ODBC path writes it
    try:
        ctx.log.info(STAGE, f"Result columns: {', '.join(names)}.")
        sink = writer.encoded()
        lone = len(columns) == 1 and out.quoting == Quoting.MINIMAL
        for text, count in _batches(rows, out.end, lone, size):
            sink.write(text)
            writer.rows += count
            counter.update(writer.rows)
    finally:
        writer.close()
    return writer.rows


def _batches(rows: Iterable[memoryview], end: bytes, lone: bool, size: int) -> Iterator[tuple[bytes, int]]:
    """The rows joined `size` at a time, each ending in the task's line ending (COPY ends them in LF)."""
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        if lone:  # PostgreSQL quotes a lone \. (its old end-of-data mark) in a one-column row; Courier does not
            batch = [b"\\.\n" if row == b'"\\."\n' else row for row in batch]
        if end == b"\n":
            yield b"".join(batch), len(batch)
        else:
            yield end.join([row[:-1] for row in batch]) + end, len(batch)
