"""Output formats: CSV and delimited text options, JSON lines and real .xlsx, exactly as the source gave the values."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from datetime import date, datetime, timezone
from decimal import Decimal

import openpyxl
import pytest

from runs.models import RunStatus
from runs.pipeline.errors import StageFailure
from runs.pipeline.formats import open_writer
from tasks.models import Task
from tests.delivery_support import ORDERS_CSV, folder_destination, orders_task, run_task

COLUMNS = ["id", "name", "note", "missing", "empty", "amount", "padded"]
ROW = (1, "a,b", 'say "hi"', None, "", Decimal("1.50"), " pad ")


def write(tmp_path, rows, columns=COLUMNS, name="out.txt", **options) -> bytes:
    task = Task(name="t", **{"output_type": "csv", **options})
    path = tmp_path / name
    writer = open_writer(task, path, columns)
    try:
        writer.write(list(rows))
    finally:
        writer.close()
    assert writer.rows == len(rows)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("quoting", "expected"),
    [
        ("minimal", b'1,"a,b","say ""hi""",,,1.50, pad \n'),
        # NULL stays an empty, unquoted field; an empty string is quoted like any other.
        ("all", b'"1","a,b","say ""hi""",,"","1.50"," pad "\n'),
        ("nonnumeric", b'1,"a,b","say ""hi""",,"",1.50," pad "\n'),
        # No quotes at all: the escape character goes before delimiters; quotes are plain text.
        ("none", b'1,a\\,b,say "hi",,,1.50, pad \n'),
    ],
)
def test_quoting_modes(tmp_path, quoting, expected):
    header = {"minimal": b"id,name,note,missing,empty,amount,padded\n", "none": b"id,name,note,missing,empty,amount,padded\n"}
    out = write(tmp_path, [ROW], output_quoting=quoting)
    first, rest = out.split(b"\n", 1)
    assert rest == expected
    if quoting in header:
        assert first + b"\n" == header[quoting]
    else:
        assert first == b'"id","name","note","missing","empty","amount","padded"'


@pytest.mark.parametrize(
    ("typed", "line"),
    [
        ("\\t", b"1\tx,y\t\"q\"\n"),
        ("tab", b"1\tx,y\t\"q\"\n"),
        ("|", b'1|x,y|"""q"""\n'),
        (";", b'1;x,y;"""q"""\n'),
    ],
)
def test_text_with_any_delimiter(tmp_path, typed, line):
    out = write(tmp_path, [(1, "x,y", '"q"')], columns=["a", "b", "c"], output_type="text", output_delimiter=typed, output_headers=False)
    if typed in ("\\t", "tab"):
        # A field holding a double quote is still quoted under minimal quoting, whatever the delimiter.
        line = b'1\tx,y\t"""q"""\n'
    assert out == line


@pytest.mark.parametrize(
    ("encoding", "text", "expected"),
    [
        ("utf-8", "Zoë €", "Zoë €".encode()),
        ("utf-8-sig", "Zoë €", b"\xef\xbb\xbf" + "Zoë €".encode()),
        ("cp1252", "Zoë €", b"Zo\xeb \x80"),
        ("latin-1", "Zoë Å", b"Zo\xeb \xc5"),
    ],
)
def test_encodings(tmp_path, encoding, text, expected):
    out = write(tmp_path, [(text,)], columns=["name"], output_encoding=encoding)
    bom = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
    assert out == bom + b"name\n" + expected[len(bom):] + b"\n"


@pytest.mark.parametrize(("encoding", "char"), [("latin-1", "€"), ("cp1252", "→"), ("latin-1", "Ω")])
def test_an_unencodable_character_names_row_and_column(tmp_path, encoding, char):
    rows = [(1, "fine"), (2, "fine"), (3, f"bad {char} here")]
    with pytest.raises(StageFailure) as failure:
        write(tmp_path, rows, columns=["id", "customer"], output_encoding=encoding)
    message = failure.value.message
    assert "row 3" in message and "column “customer”" in message and f"U+{ord(char):04X}" in message
    assert encoding in message and "bad" not in message  # names the place, never echoes the value
    assert failure.value.permanent


def test_an_unencodable_column_name_names_the_header(tmp_path):
    with pytest.raises(StageFailure, match="the header, column “€uro”"):
        write(tmp_path, [(1,)], columns=["€uro"], output_encoding="latin-1")


@pytest.mark.parametrize(
    ("ending", "suffix", "expected"),
    [
        ("lf", "", b"a,b\n1,x\n"),
        ("crlf", "", b"a,b\r\n1,x\r\n"),
        ("lf", "~", b"a,b~\n1,x~\n"),
        ("crlf", "~|", b"a,b~|\r\n1,x~|\r\n"),
    ],
)
def test_line_endings_and_characters_appended_to_each_line(tmp_path, ending, suffix, expected):
    assert write(tmp_path, [(1, "x")], columns=["a", "b"], output_line_ending=ending, output_line_suffix=suffix) == expected


def test_the_suffix_is_not_special_inside_values_and_line_breaks_are_quoted(tmp_path):
    out = write(tmp_path, [("x~y", "two\nlines", "cr\ronly")], columns=["a", "b", "c"], output_headers=False, output_line_suffix="~")
    # Python's csv writer would leave the lone CR unquoted with LF endings; Courier quotes it.
    assert out == b'x~y,"two\nlines","cr\ronly"~\n'


def test_values_are_written_exactly_as_given(tmp_path):
    rows = [("  leading and trailing  ", "'single'", '"double"', Decimal("0E-10"), Decimal("100"), 0.1, 7, True,
             datetime(2024, 1, 5, 6, 7, 8), date(2024, 1, 5), b"\x00\xff", "")]
    out = write(tmp_path, rows, columns=[f"c{i}" for i in range(12)], output_headers=False, output_quoting="none")
    assert out == b"  leading and trailing  ,'single',\"double\",0.0000000000,100,0.1,7,True,2024-01-05 06:07:08,2024-01-05,00ff,\n"


def test_header_row_off_and_query_headers_off(tmp_path):
    assert write(tmp_path, [(1,)], columns=["a"], output_headers=False) == b"1\n"
    assert write(tmp_path, [(1,)], columns=["a"], source_headers=False) == b"1\n"


def test_quoting_none_escapes_the_escape_character_and_line_breaks(tmp_path):
    out = write(tmp_path, [("a\\b", "x|y", "l1\nl2")], columns=["a", "b", "c"], output_type="text", output_delimiter="|",
                output_quoting="none", output_escape_char="\\", output_headers=False)
    assert out == b"a\\\\b|x\\|y|l1\\\nl2\n"


def test_quoting_none_without_an_escape_character_refuses_a_delimiter_in_a_value(tmp_path):
    with pytest.raises(StageFailure) as failure:
        write(tmp_path, [(1, "ok"), (2, "a|b")], columns=["id", "name"], output_type="text", output_delimiter="|",
              output_quoting="none", output_escape_char="")
    assert "row 2, column “name”" in failure.value.message and "delimiter" in failure.value.message


def test_json_lines(tmp_path):
    rows = [(1, "Zoë \"q\"", Decimal("10.50"), None, True, datetime(2024, 1, 5, 6, 7, 8), 2.5),
            (2, "", Decimal("0E-2"), None, False, None, float("nan"))]
    out = write(tmp_path, rows, columns=["id", "name", "amount", "note", "flag", "at", "id"], output_type="jsonl",
                output_encoding="latin-1", output_line_ending="crlf", output_line_suffix="~")
    lines = out.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 3  # UTF-8 and LF whatever the text options say
    assert lines[0] == '{"id":1,"name":"Zoë \\"q\\"","amount":10.50,"note":null,"flag":true,"at":"2024-01-05T06:07:08","id_2":2.5}'
    assert json.loads(lines[1]) == {"id": 2, "name": "", "amount": 0.0, "note": None, "flag": False, "at": None, "id_2": "nan"}
    assert '"amount":0.00' in lines[1]


def test_xlsx_is_a_real_workbook_with_values_as_given(tmp_path):
    at = datetime(2024, 1, 5, 6, 7, 8)
    rows = [(1, "=1+1", Decimal("10.50"), at, None, " spaced ", "007", True),
            (2, "#N/A", 0.25, date(2024, 1, 5), "x", "", "Zoë", False)]
    out = write(tmp_path, rows, columns=["id", "formula", "amount", "at", "null", "spaced", "code", "flag"], name="out.xlsx",
                output_type="xlsx")
    assert zipfile.is_zipfile(io.BytesIO(out))
    sheet = openpyxl.load_workbook(io.BytesIO(out)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["id", "formula", "amount", "at", "null", "spaced", "code", "flag"]
    assert values[1] == [1, "=1+1", 10.5, at, None, " spaced ", "007", True]
    assert values[2][:4] == [2, "#N/A", 0.25, datetime(2024, 1, 5)]
    # Text that looks like a formula or an error value stays text.
    assert [sheet.cell(2, 2).data_type, sheet.cell(3, 2).data_type] == ["s", "s"]


def test_xlsx_keeps_a_time_zone_as_text_and_refuses_control_characters(tmp_path):
    aware = datetime(2024, 1, 5, 6, 7, 8, tzinfo=timezone.utc)
    out = write(tmp_path, [(aware,)], columns=["at"], name="tz.xlsx", output_type="xlsx")
    assert openpyxl.load_workbook(io.BytesIO(out)).active.cell(2, 1).value == "2024-01-05 06:07:08+00:00"
    with pytest.raises(StageFailure, match="row 2, column “note”.*U\\+0007"):
        write(tmp_path, [("ok",), ("bell\x07",)], columns=["note"], name="bad.xlsx", output_type="xlsx")


def test_xlsx_is_streamed_in_write_only_mode(tmp_path):
    """Memory stays flat while rows are added: a workbook kept in memory would grow with every cell."""
    task = Task(name="t", output_type="xlsx")
    writer = open_writer(task, tmp_path / "big.xlsx", ["id", "text", "amount"])
    batches = [[(i, f"distinct text number {i}", Decimal(i) / 100) for i in range(start, start + 500)] for start in range(0, 2_000, 500)]
    tracemalloc.start()
    try:
        writer.write(batches[0])
        before = tracemalloc.get_traced_memory()[0]
        for batch in batches[1:]:
            writer.write(batch)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        writer.close()
    # 1,500 more rows of 3 cells: measured 22 KB in write-only mode, 1 MB for an in-memory workbook.
    assert growth < 256 * 1024, f"grew by {growth} bytes"
    book = openpyxl.load_workbook(tmp_path / "big.xlsx", read_only=True)
    assert sum(1 for _ in book.active.iter_rows()) == 2_001
    book.close()


@pytest.mark.django_db
def test_keep_as_is_is_refused_for_query_output(sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, output_type="keep")
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert run.status == RunStatus.FAILED and run.permanent
    assert "Keep as is" in run.error and "needs CSV, text, Excel or JSON lines" in run.error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "name", "check"),
    [
        ({"output_type": "csv"}, "orders.csv", lambda data: data == ORDERS_CSV),
        ({"output_type": "text", "output_delimiter": "|", "output_line_ending": "crlf", "output_line_suffix": "~",
          "output_encoding": "latin-1", "output_quoting": "all"}, "orders.txt",
         lambda data: data.split(b"\r\n")[3] == b'"3"|"Zo\xeb"|"0.10"|~'),
        ({"output_type": "jsonl"}, "orders.jsonl",
         lambda data: [json.loads(x)["customer"] for x in data.splitlines()] == ["Ann", "Bob, Jr.", "Zoë"]),
        ({"output_type": "xlsx"}, "orders.xlsx",
         lambda data: [r[1] for r in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]
         == ["customer", "Ann", "Bob, Jr.", "Zoë"]),
    ],
)
def test_query_output_in_every_format_end_to_end(sqlite_odbc, tmp_path, fields, name, check):
    task = orders_task(sqlite_odbc, **fields)
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    arrived = (tmp_path / "out" / name).read_bytes()
    assert check(arrived)
    assert run.files.get().rows == 3


def test_a_line_suffix_the_encoding_cannot_hold_is_refused_up_front(tmp_path):
    with pytest.raises(StageFailure, match="appended to each line .* cannot be written in latin-1"):
        write(tmp_path, [(1,)], columns=["a"], output_encoding="latin-1", output_line_suffix="€")
