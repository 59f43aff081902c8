"""The csv-module fast path of delimited output writes exactly the bytes of the cell-by-cell path.

runs/pipeline/formats.py formats "minimal" and "all" quoting through the csv
module's C writer (FastDelimited) and falls back to formatting each cell in
Python where the csv module would write something else. These tests feed both
paths the same awkward batches — every value type a driver hands over, values
holding delimiters, quotes, CR, LF, CRLF, the NULL marker, single-field rows,
ragged rows — under every delimiter, line ending and suffix, and compare.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from runs.pipeline.formats import FastDelimited, field_formatter
from tasks.models import Quoting

TEXTS = ["", "plain", " pad ", "a,b", "a|b", "a\tb", 'say "hi"', '"', "line\nbreak", "cr\ronly", "crlf\r\nend",
         "\r\n", "trail\r", "\x00", "nul\x00inside", '"\x00"', "\x01", "ünï©ødé", "€", "=1+1", "a;b"]
DECIMALS = [Decimal("1.50"), Decimal("0E-2"), Decimal("1E+3"), Decimal("-0.0000001"), Decimal("0.000001"), Decimal("-0"),
            Decimal("12345678901234567890.123"), Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("1.2E-7")]
VALUES = [None, 0, -7, 2**70, 1.5, float("inf"), -0.0, True, False, *DECIMALS, b"\x00\xff", bytearray(b"ab"), memoryview(b"cd"), date(2026, 1, 31),
          datetime(2026, 1, 31, 23, 59, 58, 123), datetime(2026, 1, 1, tzinfo=timezone.utc), time(1, 2, 3),
          timedelta(seconds=5), UUID(int=1), *TEXTS]


def slow_text(rows: list, delimiter: str, quoting: str, end: str) -> str:
    field = field_formatter(delimiter, quoting, "")
    return "".join([delimiter.join(map(field, row)) + end for row in rows])


def column_of(rng: random.Random, kind: str, n: int) -> list:
    """A typed column, as a driver gives one (Decimals with NULLs, only text, …), or anything at all."""
    pools = {"decimal": [None, Decimal("12.34"), Decimal("0.00"), rng.choice(DECIMALS)], "text": TEXTS,
             "int": [None, 1, 22, -3], "plain": ["x", "y z", 5, 2.5, date(2026, 2, 3)], "any": VALUES}
    return [rng.choice(pools[kind]) for _ in range(n)]


def batches(rng: random.Random):
    for _ in range(300):
        width, height = rng.choice([1, 2, 3, 8]), rng.choice([1, 2, 5, 40])
        kinds = [rng.choice(["decimal", "text", "int", "plain", "any"]) for _ in range(width)]
        columns = [column_of(rng, kind, height) for kind in kinds]
        rows = [tuple(row) for row in zip(*columns)]
        if rng.random() < 0.15:  # ragged, as a re-delimited source file may be
            rows = [row[: rng.randint(1, len(row))] for row in rows]
        yield rows


@pytest.mark.parametrize("quoting", [Quoting.MINIMAL, Quoting.ALL])
@pytest.mark.parametrize(("delimiter", "end"), [(",", "\n"), (",", "\r\n"), (";", "~\n"), ("\t", "\r\n"),
                                                 ("|", "\n"), ("\x00", "\n"), (",", ",\r\n")])
def test_fast_path_writes_the_same_text_as_the_cell_by_cell_path(quoting, delimiter, end):
    rng = random.Random(f"{quoting}{delimiter!r}{end!r}")
    fast = FastDelimited(delimiter, quoting, end)
    taken = 0
    for rows in batches(rng):
        text = fast.text(rows)
        if text is not None:
            taken += 1
            assert text == slow_text(rows, delimiter, quoting, end), rows
    assert taken > 100  # the fast path really ran for most batches


def test_the_fast_path_takes_typical_query_batches():
    rows = [(n, Decimal(n) / 100, f"item {n}, \"q\"", None if n % 5 == 0 else n, datetime(2026, 1, 1)) for n in range(50)]
    for quoting in (Quoting.MINIMAL, Quoting.ALL):
        assert FastDelimited(",", quoting, "\n").text(rows) == slow_text(rows, ",", quoting, "\n")


def test_a_lone_empty_field_and_a_value_holding_the_null_marker_take_the_cell_by_cell_path():
    assert FastDelimited(",", Quoting.MINIMAL, "\n").text([("",), ("x",)]) is None
    assert FastDelimited(",", Quoting.ALL, "\n").text([("\x00", None)]) is None
