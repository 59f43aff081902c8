"""The parameter language (SPEC 6): text, merging, parse(), names.

The clock is fixed at Tuesday 2026-03-31 10:00 in Amsterdam; expected values
were worked out by hand.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from projects.parameters import (
    Param,
    ParameterError,
    check_file_name,
    env_name,
    env_vars,
    expand_parse_calls,
    merge,
    parse_lines,
    resolve,
    substitute,
)

AT = datetime(2026, 3, 31, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))


# --- parameter text -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1", [("a", "1")]),
        ("a:1", [("a", "1")]),
        ("@d=getdate()-1", [("@d", "getdate()-1")]),
        # The first "=" or ":" separates, whichever comes first.
        ("url=http://host:8080/?a=b", [("url", "http://host:8080/?a=b")]),
        ("time:10:00", [("time", "10:00")]),
        ("k==x", [("k", "=x")]),
        ("k=", [("k", "")]),
        ("  k = v with spaces  ", [("k", "v with spaces")]),
        ("#tmp=1", [("#tmp", "1")]),  # no comment syntax: # starts keys
        ("\n\n a=1\r\n\n  \nb:2\n", [("a", "1"), ("b", "2")]),
        ("@s='O''Brien'", [("@s", "'O''Brien'")]),
        ("", []),
    ],
)
def test_parse_lines(text: str, expected: list[tuple[str, str]]) -> None:
    assert parse_lines(text) == [Param(k, v) for k, v in expected]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("novalue", "line 1: expected key=value or key:value, got 'novalue'"),
        ("a=1\n\n=2", "line 3: the key before '=' is empty"),
        ("a=1\n   :x", "line 2: the key before ':' is empty"),
        ("a=1\nb=2\nA=3", "line 3: key 'A' is already set on line 1"),
    ],
)
def test_parse_lines_errors(text: str, message: str) -> None:
    with pytest.raises(ParameterError) as error:
        parse_lines(text)
    assert str(error.value) == message


def test_parse_lines_error_does_not_echo_a_value() -> None:
    with pytest.raises(ParameterError) as error:
        parse_lines("=s3cret-password")
    assert "s3cret" not in str(error.value)


# --- merging --------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "task", "expected"),
    [
        ([], [], []),
        ([Param("a", "1")], [], [Param("a", "1")]),
        ([], [Param("a", "1")], [Param("a", "1")]),
        # Task wins, in the project's position; new task keys come after.
        (
            [Param("a", "1"), Param("b", "2")],
            [Param("c", "4"), Param("b", "3")],
            [Param("a", "1"), Param("b", "3"), Param("c", "4")],
        ),
        # Keys compare case-insensitively; the task's spelling is kept.
        ([Param("@Client", "x")], [Param("@client", "y")], [Param("@client", "y")]),
        # A key secret on the project stays secret.
        (
            [Param("pw", "one", sensitive=True)],
            [Param("pw", "two")],
            [Param("pw", "two", sensitive=True)],
        ),
        ([Param("pw", "one")], [Param("pw", "two", True)], [Param("pw", "two", True)]),
        ([], [Param("x", "1"), Param("X", "2")], [Param("X", "2")]),
    ],
)
def test_merge(project: list[Param], task: list[Param], expected: list[Param]) -> None:
    assert merge(project, task) == expected


# --- parse(...) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("parse(%Y%m%d)", "20260331"),
        ("'parse(%Y-%m-%d-1)' AND 'parse(%Y-%m-%d)'", "'2026-03-30' AND '2026-03-31'"),
        ("parse(%Y)parse(%m)parse(%d)", "20260331"),
        ("parse(%Y%m-1firstday0)-parse(%Y%m-1lastday)", "20260201-20260228"),
        ("parse(%Y (%m))", "2026 (03)"),  # balanced brackets stay in the pattern
        ("parse()", ""),
        ("parse(%%)", "%"),
        ("getdate()-1", "getdate()-1"),
        ("PARSE('1' AS int)", "PARSE('1' AS int)"),  # T-SQL's PARSE is left alone
        ("myparse(%Y)", "myparse(%Y)"),
        ("%Y", "%Y"),  # outside parse() a value is plain text
    ],
)
def test_expand_parse_calls(value: str, expected: str) -> None:
    assert expand_parse_calls(value, AT) == expected


def test_parse_without_closing_parenthesis() -> None:
    with pytest.raises(ParameterError, match="character 3 has no closing parenthesis"):
        expand_parse_calls("x parse(%Y", AT)


def test_resolve_keeps_keys_and_flags() -> None:
    params = [Param("@d", "parse(%Y-%m-%d-1)"), Param("pw", "x", sensitive=True)]
    assert resolve(params, AT) == [Param("@d", "2026-03-30"), Param("pw", "x", True)]


def test_resolve_error_names_the_key_not_the_value() -> None:
    with pytest.raises(ParameterError) as error:
        resolve([Param("@pw", "hunter2 parse(%Y", sensitive=True)], AT)
    assert "'@pw'" in str(error.value)
    assert "hunter2" not in str(error.value)


# --- substitution in names, subjects and messages ----------------------------


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        ("@client_%Y%m%d.csv", {"@client": "ACME"}, "ACME_20260331.csv"),
        ("x_%Y.csv", {}, "x_2026.csv"),
        # Longest key first: @client is not read as @c + "lient".
        ("@client-@c", {"@c": "X", "@client": "ACME"}, "ACME-X"),
        # One pass: a value holding another key is not substituted again.
        ("@a", {"@a": "@b", "@b": "Z"}, "@b"),
        ("@CLIENT", {"@client": "ACME"}, "ACME"),
        ("@client@client", {"@client": "A"}, "AA"),
        # Values are inserted verbatim: no date expansion inside them.
        ("@pct_%d", {"@pct": "100%%d"}, "100%%d_31"),
        ("@p", {"@p": "parse(%%Y)"}, "%Y"),  # not expanded a second time
        ("@day.csv", {"@day": "parse(%d-1)"}, "30.csv"),
        # Groups span inserted values; a value never becomes an offset.
        ("%Y%m%d-1_@c_%Y%m%d", {"@c": "X"}, "20260330_X_20260331"),
        ("%d@off", {"@off": "-5"}, "31-5"),
        ("@w", {"@w": "lastday"}, "lastday"),
        ("Extract @name failed", {"@name": "Sales $1 \\1"}, "Extract Sales $1 \\1 failed"),
    ],
)
def test_substitute(text: str, params: dict[str, str], expected: str) -> None:
    assert substitute(text, [Param(k, v) for k, v in params.items()], AT) == expected


def test_substitute_uses_the_task_value_after_merge() -> None:
    params = merge([Param("@client", "Project")], [Param("@Client", "Task")])
    assert substitute("@client.csv", params, AT) == "Task.csv"


# --- environment names --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("client", "client"),
        ("@client", "client"),
        ("#tmp", "tmp"),
        ("@@x", "x"),
        ("my-key.v2", "my_key_v2"),
        ("a b", "a_b"),
        ("@d@x", "d_x"),  # only leading @ and # are dropped
        ("ünï", "_n_"),
    ],
)
def test_env_name(key: str, expected: str) -> None:
    assert env_name(key) == expected


def test_env_name_that_would_be_empty() -> None:
    with pytest.raises(ParameterError, match="'@#'"):
        env_name("@#")


def test_env_vars() -> None:
    params = [Param("@from", "2026"), Param("#to", "x", sensitive=True)]
    assert env_vars(params) == {"from": "2026", "to": "x"}


def test_env_vars_refuses_two_keys_with_one_name() -> None:
    with pytest.raises(ParameterError, match="'@a-b' and 'a_b' both become"):
        env_vars([Param("@a-b", "1"), Param("a_b", "2")])


# --- file names -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["report_2026.csv", "a..b.csv", ".hidden", "x y.txt"])
def test_check_file_name_accepts(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("a/b.csv", "contains a path separator"),
        ("..\\b.csv", "contains a path separator"),
        ("/etc/passwd", "contains a path separator"),
        ("..", "is not a file name"),
        (".", "is not a file name"),
        ("a\x00b", "contains a control character"),
        ("a\r\nDELE x", "contains a control character"),
    ],
)
def test_check_file_name_refuses(name: str, problem: str) -> None:
    with pytest.raises(ParameterError) as error:
        check_file_name(name)
    assert str(error.value) == f"file name {name!r} {problem}"
