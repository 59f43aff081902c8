"""Random rows of every common PostgreSQL type, for comparing the COPY fast path with the ODBC path (tests/test_pgcopy.py).

Each type has a generator of SQL literals: its awkward values first (every
one appears at least once, in the first rows), then random ones. A value is
None for NULL. Only values the ODBC path can read are made (years 1–9999,
no BC, no infinities of dates), since "the same bytes" needs bytes on both sides.
"""

from __future__ import annotations

import json
import math
import random
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

ALPHABET = "abcXYZ019 ,;|\t\"'\\.-_\r\n–éü€\u00a0😀"
AWKWARD_TEXT = ["", " ", "\\.", '"', '""', ",", "a,b", "line\nbreak", "cr\ronly", "crlf\r\n", "tab\there", "|", "~", "NULL", "é€😀", "x" * 3000]


def _text(rnd: random.Random, longest: int = 40) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, longest)))


def _double(rnd: random.Random) -> float:
    while True:
        kind = rnd.random()
        if kind < 0.35:
            value = struct.unpack("d", rnd.randbytes(8))[0]
        elif kind < 0.7:
            value = rnd.uniform(-1, 1) * 10 ** rnd.randint(-8, 20)
        else:
            value = rnd.randint(-10**18, 10**18) / 10 ** rnd.randint(0, 3)
        if math.isfinite(value):
            return value


def _single(rnd: random.Random) -> float:
    while True:
        value = struct.unpack("f", rnd.randbytes(4))[0] if rnd.random() < 0.5 else rnd.uniform(-1e6, 1e6)
        if math.isfinite(value):
            return value


def _timestamp(rnd: random.Random) -> datetime:
    moment = datetime(1, 1, 1) + timedelta(seconds=rnd.randint(0, 315_537_897_599))
    return moment.replace(microsecond=rnd.choice([0, 0, rnd.randint(0, 999_999), 500_000, 120_000]))


def _numeric(rnd: random.Random) -> str:
    digits = str(rnd.randint(0, 10 ** rnd.randint(1, 30)))
    scale = rnd.randint(0, min(len(digits), 12))
    sign = rnd.choice(["", "-"])
    return f"{sign}{digits[:-scale] or '0'}.{digits[-scale:]}" if scale else f"{sign}{digits}"


def _array(items: list[str | None]) -> str:
    def element(item):
        if item is None:
            return "NULL"
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "{" + ",".join(map(element, items)) + "}"


def _json(rnd: random.Random) -> str:
    value = {"n": rnd.randint(-5, 5), "f": rnd.choice([0.5, 1e-7, 123.25]), "t": _text(rnd, 8), "l": [True, None, "é"]}
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)


@dataclass(frozen=True)
class Kind:
    sql_type: str
    awkward: list[str]
    make: Callable[[random.Random], str]


KINDS = [
    Kind("int2", ["-32768", "32767", "0"], lambda r: str(r.randint(-32768, 32767))),
    Kind("int4", ["-2147483648", "2147483647"], lambda r: str(r.randint(-2**31, 2**31 - 1))),
    Kind("int8", ["-9223372036854775808", "9223372036854775807"], lambda r: str(r.randint(-2**63, 2**63 - 1))),
    Kind("numeric", ["0", "-0.00", "0.0000001", "1E+20", "NaN", "Infinity", "-Infinity", "123456789012345678901234567890.123456789"], _numeric),
    Kind("numeric(12,2)", ["0", "-9999999999.99", "0.10"], lambda r: f"{r.randint(-10**12 + 1, 10**12 - 1) / 100:.2f}"),
    Kind("float8", ["0", "-0", "1", "0.1", "1e15", "1.5e15", "9999999999999998", "1e16", "2e16", "46672873840999856", "1e-4", "1e-5",
                    "Infinity", "-Infinity", "NaN", "5e-324", "1.7976931348623157e308", "-1.797693134862315e308", "1e22", "123e18"],
         lambda r: repr(_double(r))),
    Kind("float4", ["0", "-0", "0.1", "16777217", "1e10", "3.4028235e38", "1e-45", "Infinity", "NaN"], lambda r: repr(_single(r))),
    Kind("money", ["0", "-1.50", "1000000", "92233720368547758.07", "-92233720368547758.08"],
         lambda r: f"{r.randint(-10**15, 10**15) / 100:.2f}"),
    Kind("bool", ["true", "false"], lambda r: r.choice(["true", "false"])),
    Kind("text", AWKWARD_TEXT, _text),
    Kind("varchar(20)", ["", "a,b", "x" * 20], lambda r: _text(r, 20)),
    Kind("char(5)", ["", "ab", "a,b", "12345"], lambda r: _text(r, 5).replace("\r", "").replace("\n", "")),
    Kind("name", ["", "a b"], lambda r: _text(r, 20).replace("\x00", "")),
    Kind('"char"', ["a", ","], lambda r: r.choice("abc,;|\"")),
    Kind("bytea", ["\\x", "\\x00ff", "\\x2c0a"], lambda r: "\\x" + r.randbytes(r.randint(0, 40)).hex()),
    Kind("date", ["0001-01-01", "9999-12-31", "2024-02-29"], lambda r: _timestamp(r).date().isoformat()),
    Kind("time", ["00:00:00", "23:59:59.999999", "12:00:00.5"], lambda r: _timestamp(r).time().isoformat()),
    Kind("timetz", ["00:00:00+00", "12:34:56.789-05:30"], lambda r: _timestamp(r).time().isoformat() + r.choice(["+00", "+02", "-09:30"])),
    Kind("timestamp", ["0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", "2026-01-01 00:00:01.5"], lambda r: str(_timestamp(r))),
    Kind("timestamptz", ["2026-03-29 01:30:00.25+00", "2000-01-01 00:00:00+14"], lambda r: str(_timestamp(r)) + r.choice(["+00", "-03", "+05:45"])),
    Kind("interval", ["0", "1 day 02:00:00.5", "-1 mon", "178000000 years"],
         lambda r: f"{r.randint(-99, 99)} days {r.randint(0, 23)}:{r.randint(0, 59)}:{r.randint(0, 59)}.{r.randint(0, 999999)}"),
    Kind("uuid", ["00000000-0000-0000-0000-000000000000"], lambda r: str(uuid.UUID(bytes=r.randbytes(16)))),
    Kind("json", ['{"a": 1}', "[]", '"x,y"'], _json),
    Kind("jsonb", ['{"b": 1, "a": [1.5, null]}', "{}"], _json),
    Kind("inet", ["127.0.0.1", "::1", "192.168.0.1/24"], lambda r: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}"),
    Kind("cidr", ["10.0.0.0/8", "2001:db8::/32"], lambda r: f"10.{r.randint(0, 255)}.0.0/16"),
    Kind("macaddr", ["08:00:2b:01:02:03"], lambda r: ":".join(f"{b:02x}" for b in r.randbytes(6))),
    Kind("xml", ["", "<a>x &amp; y</a>"], lambda r: f"<v n=\"{r.randint(0, 9)}\">{_text(r, 10).replace('&', '').replace('<', '')}</v>"),
    Kind("bit(3)", ["000", "101"], lambda r: format(r.randint(0, 7), "03b")),
    Kind("varbit", ["", "1"], lambda r: "".join(r.choice("01") for _ in range(r.randint(0, 12)))),
    Kind("oid", ["0", "4294967295"], lambda r: str(r.randint(0, 2**32 - 1))),
    Kind("int4[]", ["{}", "{1,NULL,3}"], lambda r: _array([str(r.randint(-9, 9)) for _ in range(r.randint(0, 4))])),
    Kind("text[]", ["{}", '{"a,b","c\\"d",NULL}'], lambda r: _array([_text(r, 6) for _ in range(r.randint(0, 3))])),
    Kind("float8[]", ["{0.1,1,1e16}"], lambda r: _array([repr(_double(r)) for _ in range(r.randint(0, 3))])),
    Kind("numeric[]", ["{1.50,NaN}"], lambda r: _array([_numeric(r) for _ in range(r.randint(0, 3))])),
    Kind("bool[]", ["{t,f}"], lambda r: _array([r.choice(["t", "f"]) for _ in range(r.randint(0, 3))])),
    Kind("timestamp[]", ['{"2026-01-01 00:00:01.5"}'], lambda r: _array([str(_timestamp(r)) for _ in range(r.randint(0, 2))])),
    Kind("uuid[]", ["{}"], lambda r: _array([str(uuid.UUID(bytes=r.randbytes(16)))])),
]


def column(index: int) -> str:
    return f"c{index:02d}"


def rows(seed: int, count: int, null_share: float = 0.12) -> list[list[str | None]]:
    """`count` rows of every kind: the awkward values in the first rows, random values (and NULLs) after."""
    rnd = random.Random(seed)
    made = []
    for number in range(count):
        row = []
        for kind in KINDS:
            if number < len(kind.awkward):
                row.append(kind.awkward[number])
            else:
                row.append(None if rnd.random() < null_share else kind.make(rnd))
        made.append(row)
    return made


def fill_table(db, table: str, seed: int, count: int) -> None:
    """A table `table` with a serial key `k` and a column cNN of each kind, filled with `rows(seed, count)`."""
    columns = ", ".join(f"{column(i)} {kind.sql_type}" for i, kind in enumerate(KINDS))
    values = ", ".join(f"%s::{kind.sql_type}" for kind in KINDS)
    with psycopg.connect(host="127.0.0.1", port=5432, dbname=db.name, user=db.user, password=db.password, autocommit=True) as cnxn:
        cnxn.execute(f"DROP TABLE IF EXISTS {table}")
        cnxn.execute(f"CREATE TABLE {table} (k serial PRIMARY KEY, {columns})")
        with cnxn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({', '.join(column(i) for i in range(len(KINDS)))}) VALUES ({values})",
                               rows(seed, count))
