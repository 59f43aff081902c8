"""The parameter language and date arithmetic (SPEC section 6 and 6.1).

Pure Python on purpose: the pipeline, the previews and the tests all use it
without a database.

Decisions (the tests in tests/test_parameters.py and tests/test_dates.py pin
each one):

- Parameter text: one ``key=value`` or ``key:value`` per line; the first ``=``
  or ``:`` separates. Key and value are stripped of surrounding whitespace (a
  value that needs edge spaces is entered as a key/value row). There is no
  comment syntax, because keys may start with ``#``. A key repeated in one
  text is an error (almost always a copy-paste slip).
- Keys are case-insensitive everywhere (merge, names, SQL), like SQL Server
  variables, so "a task parameter with the same key wins" holds everywhere.
- Merge: the task's parameter takes the project's place in the order. It stays
  sensitive if either side was marked sensitive, so a secret declared on the
  project is never shown because a task forgot the flag.
- ``parse(`` is matched in lowercase only and not inside a longer word, so
  T-SQL's own ``PARSE(... AS date)`` passes through untouched.
- Substitution inserts values verbatim: date patterns are expanded in the
  template text only, never inside an inserted value, so a ``%`` in a value
  (for instance from ``parse(%%)``) is never expanded twice. A value gets a
  date through ``parse(...)``.
- Date names (``%a %A %b %B %p``) are English whatever the worker's locale,
  so a vendor's file name does not change with the machine.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

__all__ = [
    "Param",
    "ParameterError",
    "check_file_name",
    "env_name",
    "env_vars",
    "expand_dates",
    "expand_parse_calls",
    "file_name_problem",
    "merge",
    "parse_lines",
    "resolve",
    "stray_percent",
    "substitute",
    "without_keys",
]


class ParameterError(ValueError):
    """A parameter text, value or date pattern that cannot be used."""


@dataclass(frozen=True)
class Param:
    key: str
    value: str
    sensitive: bool = False


def _fold(key: str) -> str:
    # lower(), not casefold(): it must agree with re.IGNORECASE in substitute().
    return key.lower()


# --------------------------------------------------------------------------
# Parameter text and merging
# --------------------------------------------------------------------------

_SEPARATOR = re.compile(r"[=:]")


def parse_lines(text: str) -> list[Param]:
    """Read ``key=value`` / ``key:value`` lines; blank lines are skipped."""
    params: list[Param] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _SEPARATOR.search(line)
        if found is None:
            # No separator means there is no value part, so echoing is safe.
            shown = line.strip()[:40]
            raise ParameterError(
                f"line {number}: expected key=value or key:value, got {shown!r}"
            )
        key = line[: found.start()].strip()
        if not key:
            raise ParameterError(f"line {number}: the key before {found.group()!r} is empty")
        if _fold(key) in first_line:
            raise ParameterError(
                f"line {number}: key {key!r} is already set on line {first_line[_fold(key)]}"
            )
        first_line[_fold(key)] = number
        params.append(Param(key, line[found.end() :].strip()))
    return params


def merge(project: Iterable[Param], task: Iterable[Param]) -> list[Param]:
    """Project parameters overridden by the task's (keys compared case-insensitively)."""
    merged: dict[str, Param] = {}
    for param in [*project, *task]:
        old = merged.get(_fold(param.key))
        if old is not None:
            param = replace(param, sensitive=param.sensitive or old.sensitive)
        merged[_fold(param.key)] = param  # a dict keeps the first position
    return list(merged.values())


# --------------------------------------------------------------------------
# Date patterns
# --------------------------------------------------------------------------

_UNIT = {
    "Y": "years", "y": "years",
    "m": "months", "b": "months", "B": "months",
    "d": "days", "j": "days", "a": "days", "A": "days", "w": "days",
    "U": "weeks", "W": "weeks",
    "H": "hours", "I": "hours",
    "M": "minutes", "S": "seconds", "f": "microseconds",
}  # fmt: skip

# An offset is a sign and digits *immediately* after a directive; "-" before
# "%" (as in %Y-%m-%d) is plain text. %p has no unit, so it takes no offset.
# To write digits right after a directive, give it a zero shift: %d+0-1.
_DATE_TOKEN = re.compile(
    r"%%"
    r"|%(?P<letter>[YymbBdjaAwUWHIMSf])(?P<offset>[+-]\d+)?"
    r"|%(?P<ampm>p)"
    r"|(?P<word>firstday0|firstday|lastday)"
)

_MONTHS = ["January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Directive:
    letter: str
    offset: int
    source: str  # as written, for error messages


@dataclass(frozen=True)
class _Word:
    word: str


_Token = _Literal | _Directive | _Word


def _tokenize(text: str) -> Iterator[_Token]:
    position = 0
    for found in _DATE_TOKEN.finditer(text):
        if found.start() > position:
            yield _Literal(text[position : found.start()])
        position = found.end()
        if found.group() == "%%":
            yield _Literal("%")
        elif found.group("word"):
            yield _Word(found.group("word"))
        else:
            letter = found.group("letter") or found.group("ampm")
            yield _Directive(letter, int(found.group("offset") or 0), found.group())
    if position < len(text):
        yield _Literal(text[position:])


def _groups(tokens: Iterable[_Token]) -> list[list[_Token]]:
    """Split at the first directive that repeats within the current group."""
    groups: list[list[_Token]] = [[]]
    seen: set[str] = set()
    for token in tokens:
        if isinstance(token, _Directive):
            if token.letter in seen:
                groups.append([])
                seen = set()
            seen.add(token.letter)
        groups[-1].append(token)
    return groups


def _add_months(value: datetime, months: int) -> datetime:
    years, month_index = divmod(value.month - 1 + months, 12)
    year = value.year + years
    if not 1 <= year <= 9999:
        raise OverflowError
    day = min(value.day, calendar.monthrange(year, month_index + 1)[1])
    return value.replace(year=year, month=month_index + 1, day=day)


def _on_wall_clock(local: datetime, zone) -> datetime:
    """Attach the zone to a naive wall-clock time that may not exist.

    A time in a spring-forward gap moves forward by the gap (02:30 on the
    Amsterdam change day becomes 03:30); a repeated autumn time means its
    first occurrence (fold=0). The UTC round trip does both with zoneinfo.
    """
    if zone is None:
        return local
    return local.replace(tzinfo=zone, fold=0).astimezone(timezone.utc).astimezone(zone)


def _shifted(at: datetime, directives: list[_Directive]) -> datetime:
    """Apply all of a group's shifts to one date.

    Years and months go first, together, so the day is clamped once
    (2024-02-29 with %Y+1%m-1 is 2025-01-29). Days and weeks are calendar
    days on the wall clock (%d-1 at 10:00 is yesterday at 10:00 even across
    a DST change). Hours and smaller are elapsed time (%H-6 is six real hours
    ago, so across a DST change the clock reading moves by 5 or 7).
    """
    total = dict.fromkeys(_UNIT.values(), 0)
    for directive in directives:
        if directive.offset:  # %p has no unit and never an offset
            total[_UNIT[directive.letter]] += directive.offset
    months = total["years"] * 12 + total["months"]
    days = total["days"] + 7 * total["weeks"]
    result = at
    if months or days:
        local = _add_months(at.replace(tzinfo=None), months) + timedelta(days=days)
        result = _on_wall_clock(local, at.tzinfo)
    elapsed = timedelta(
        hours=total["hours"],
        minutes=total["minutes"],
        seconds=total["seconds"],
        microseconds=total["microseconds"],
    )
    if elapsed and result.tzinfo is not None:
        result = (result.astimezone(timezone.utc) + elapsed).astimezone(at.tzinfo)
    elif elapsed:
        result = result + elapsed
    return result


def _format(letter: str, value: datetime) -> str:
    simple = {
        "Y": f"{value.year:04d}",
        "y": f"{value.year % 100:02d}",
        "m": f"{value.month:02d}",
        "d": f"{value.day:02d}",
        "H": f"{value.hour:02d}",
        "I": f"{(value.hour + 11) % 12 + 1:02d}",
        "M": f"{value.minute:02d}",
        "S": f"{value.second:02d}",
        "f": f"{value.microsecond:06d}",
        "p": "AM" if value.hour < 12 else "PM",
        "b": _MONTHS[value.month - 1][:3],
        "B": _MONTHS[value.month - 1],
        "a": _DAYS[value.weekday()][:3],
        "A": _DAYS[value.weekday()],
        "w": str((value.weekday() + 1) % 7),
        "j": f"{value.timetuple().tm_yday:03d}",
    }
    if letter in simple:
        return simple[letter]
    # %U and %W are plain numbers, so the C library's strftime is portable.
    return value.strftime(f"%{letter}")


def _render_word(word: str, value: datetime) -> str:
    if word == "firstday":
        return "1"
    if word == "firstday0":
        return "01"
    return str(calendar.monthrange(value.year, value.month)[1])


def _render_group(group: list[_Token], at: datetime) -> str:
    directives = [token for token in group if isinstance(token, _Directive)]
    try:
        value = _shifted(at, directives)
    except (OverflowError, ValueError):
        shifts = " ".join(d.source for d in directives if d.offset)
        raise ParameterError(f"date shift {shifts} is out of range") from None
    parts = []
    for token in group:
        if isinstance(token, _Literal):
            parts.append(token.text)
        elif isinstance(token, _Word):
            parts.append(_render_word(token.word, value))
        else:
            parts.append(_format(token.letter, value))
    return "".join(parts)


def _render(tokens: Iterable[_Token], at: datetime) -> str:
    return "".join(_render_group(group, at) for group in _groups(tokens))


def expand_dates(text: str, at: datetime) -> str:
    """Expand date directives, shifts, firstday/lastday and %% in ``text``.

    ``at`` should be aware (the project's zone); a naive ``at`` is treated as
    a wall clock without daylight saving.
    """
    return _render(_tokenize(text), at)


# --------------------------------------------------------------------------
# parse(...) in values, and resolving
# --------------------------------------------------------------------------

_PARSE_CALL = re.compile(r"(?<![\w@#$])parse\(")


def _closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` that closes the ``(`` just before ``start``, or -1."""
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def expand_parse_calls(value: str, at: datetime) -> str:
    """Replace every ``parse(<pattern>)`` by the expanded pattern."""
    parts: list[str] = []
    position = 0
    while (found := _PARSE_CALL.search(value, position)) is not None:
        end = _closing_paren(value, found.end())
        if end < 0:
            raise ParameterError(
                f"parse( at character {found.start() + 1} has no closing parenthesis"
            )
        parts.append(value[position : found.start()])
        parts.append(expand_dates(value[found.end() : end], at))
        position = end + 1
    parts.append(value[position:])
    return "".join(parts)


def resolve(params: Iterable[Param], at: datetime) -> list[Param]:
    """The parameters with every ``parse(...)`` in their values expanded."""
    resolved = []
    for param in params:
        try:
            value = expand_parse_calls(param.value, at)
        except ParameterError as error:
            # Name the key, never the value: the value may be a secret.
            raise ParameterError(f"parameter {param.key!r}: {error}") from None
        resolved.append(replace(param, value=value))
    return resolved


def _alternation(words: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    """One regex matching any of ``words``, the longest first at each position."""
    unique = sorted({w for w in words if w}, key=len, reverse=True)
    if not unique:
        return None
    return re.compile("|".join(re.escape(w) for w in unique), flags)


def substitute(text: str, params: Iterable[Param], at: datetime) -> str:
    """Fill a file name, zip name, subject or message.

    Keys are replaced in one pass (longest first, case-insensitive), so a value
    that contains another key is left as it is; then date patterns in the
    template text are expanded, with the inserted values kept verbatim.
    """
    values: dict[str, str] = {}
    for param in resolve(params, at):
        values[_fold(param.key)] = param.value
    pattern = _alternation(values, re.IGNORECASE)
    tokens: list[_Token] = []
    position = 0
    for found in pattern.finditer(text) if pattern else ():
        tokens.extend(_tokenize(text[position : found.start()]))
        tokens.append(_Literal(values[_fold(found.group())]))
        position = found.end()
    tokens.extend(_tokenize(text[position:]))
    return _render(tokens, at)


# --------------------------------------------------------------------------
# Environment, file names
# --------------------------------------------------------------------------

_NOT_ENV = re.compile(r"[^A-Za-z0-9_]")


def env_name(key: str) -> str:
    """The environment variable name for a parameter key (SPEC 3.7)."""
    name = _NOT_ENV.sub("_", key.strip().lstrip("@#"))
    if not name:
        raise ParameterError(f"parameter key {key!r} gives an empty environment variable name")
    return name


def env_vars(params: Iterable[Param]) -> dict[str, str]:
    """One environment entry per parameter; two keys may not share a name."""
    entries: dict[str, str] = {}
    owners: dict[str, str] = {}
    for param in params:
        name = env_name(param.key)
        if name in owners:
            raise ParameterError(
                f"parameters {owners[name]!r} and {param.key!r} both become "
                f"environment variable {name}"
            )
        owners[name] = param.key
        entries[name] = param.value
    return entries


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def file_name_problem(name: str) -> str | None:
    """What keeps ``name`` from being one plain file name ("contains a path separator", …), or None.

    Control characters are refused as well as NUL: a CR/LF in a name would
    end an FTP command early.
    """
    if not name.strip():
        return "is empty"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if name in (".", ".."):
        return "is not a file name"
    if _CONTROL.search(name):
        return "contains a control character"
    return None


def check_file_name(name: str) -> str:
    """Return ``name`` if it is one plain file name, else raise ParameterError."""
    if problem := file_name_problem(name):
        raise ParameterError(f"file name {name!r} {problem}")
    return name


def stray_percent(text: str) -> str | None:
    """The first ``%`` of ``text`` that starts no date pattern and is no ``%%``, with the character after it; else None.

    Such a ``%`` is kept as it is when the text is expanded, which is almost
    always a mistyped pattern (``%Y%m%`` for ``%Y%m%d``); a percent sign is written ``%%``.
    """
    position = 0
    for found in (*_DATE_TOKEN.finditer(text), None):
        end = found.start() if found else len(text)
        lone = text.find("%", position, end)
        if lone >= 0:
            return text[lone : lone + 2]
        position = found.end() if found else end
    return None


def without_keys(text: str, keys: Iterable[str]) -> str:
    """``text`` with every parameter key in it replaced by a plain letter: what is left is the text's own.

    Keys are matched as substitute() matches them (longest first, ignoring case),
    so a key such as ``%client%`` is not mistaken for a date pattern.
    """
    pattern = _alternation(keys, re.IGNORECASE)
    return pattern.sub("x", text) if pattern else text
