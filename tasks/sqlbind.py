"""Bound placeholders in SQL (SPEC 6, "In SQL, on every dialect"): ``:name`` is sent as ``?`` and bound.

The scan reads the tokens of tasks/sqltext.py, so it is exact wherever that
lexer is: strings, comments, quoted names and dollar quotes are never read.
Decisions (pinned by tests/test_sqlbind.py):

- A placeholder is ``:`` followed at once by a name (a letter or ``_``, then
  letters, digits, ``_``), where the ``:`` follows neither another ``:`` nor
  a name or number: ``x::date`` is a cast, ``@a := 1`` an assignment,
  ``arr[lo:hi]`` a slice. ``:start::date`` is a placeholder with a cast.
- It is bound to the parameter whose key, without one leading ``@``, ``#`` or
  ``$``, is the name (case-insensitive). Two such parameters (``@day`` and
  ``day``) are an error, not a guess.
- Values are bound as text, never pasted into the SQL. DECLARE/SET defaults
  (sqltext.declaration_edits) are replaced in the same pass; a placeholder
  inside a default that a parameter replaces is gone with it.
- Every batch (GO) binds its own markers, in the order they appear; a
  placeholder used three times binds three markers.
- A query with placeholders may not hold a ``?`` outside strings and comments:
  the driver would take it for a marker too. SQLite's driver also counts a
  ``?`` in a comment or a [name]/`name`, so there those are refused as well.
- MySQL/MariaDB: the driver binds the markers of a batch's first statement
  only, so a batch with placeholders runs one statement at a time (shown as
  separate batches). BEGIN ... END and CASE ... END blocks stay whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from connections.masking import MASK
from tasks.sqltext import (
    COMMENT,
    PUNCT,
    QUOTED,
    TRIVIA,
    WORD,
    Edit,
    SqlError,
    Token,
    assigned_variables,
    check_dialect,
    declaration_edits,
    edited,
    line_of,
    prepare,
    tokenize,
)  # fmt: skip

__all__ = ["Batch", "Binding", "Placeholder", "PlaceholderError", "bind", "bindings", "bound_summary", "key_name", "problem", "unused"]

KEY_PREFIXES = "@#$"
_NAME = re.compile(r"[^\W\d]\w*")


class PlaceholderError(SqlError):
    """Placeholders that cannot be bound: no parameter, two, or a ``?`` the driver would count too."""


@dataclass(frozen=True)
class Placeholder:
    name: str  # as written, without the colon
    start: int  # the colon
    end: int

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Batch:
    """One batch as the driver gets it: ``?`` markers, and what each is bound to, in order."""

    sql: str
    names: tuple[str, ...] = ()  # the placeholder behind each marker
    values: tuple[str, ...] = ()


class _Param(Protocol):  # projects.parameters.Param
    key: str
    value: str


def key_name(key: str) -> str:
    """The placeholder name a parameter key answers to (lower case)."""
    key = key.strip()
    return (key[1:] if key[:1] in KEY_PREFIXES else key).lower()


# --------------------------------------------------------------------------
# The scan
# --------------------------------------------------------------------------


def placeholders(tokens: list[Token]) -> list[Placeholder]:
    found = []
    for index, token in enumerate(tokens[:-1]):
        name = tokens[index + 1]
        if token.text != ":" or name.kind != WORD or not _NAME.fullmatch(name.text):
            continue
        before = tokens[index - 1] if index else None
        if before is not None and (before.text == ":" or before.kind == WORD):
            continue  # a cast (x::date) or a slice (arr[lo:hi])
        found.append(Placeholder(name.text, token.start, name.end))
    return found


def _stray_marker(tokens: list[Token], dialect: str) -> Token | None:
    """A ``?`` the driver would count as a marker besides Courier's own."""
    for token in tokens:
        if token.kind == PUNCT and token.text == "?":
            return token
        # sqliteodbc counts '?' everywhere but in '...' and "..." (measured with 0.9998).
        if dialect == "sqlite" and "?" in token.text and (token.kind == COMMENT or (token.kind == QUOTED and token.text[0] in "[`")):
            return token
    return None


def _describe(found: list[Placeholder], sql: str) -> str:
    return ", ".join(f":{p.name} (line {line_of(sql, p.start)})" for p in found)


def check(sql: str, dialect: str, keys: Iterable[str]) -> list[Placeholder]:
    """The query's placeholders; PlaceholderError naming every one without exactly one parameter."""
    dialect = check_dialect(dialect)
    tokens = tokenize(sql, dialect)
    found = placeholders(tokens)
    if not found:
        return found
    owners: dict[str, list[str]] = {}
    for key in keys:
        owners.setdefault(key_name(key), []).append(key.strip())
    first_use: dict[str, Placeholder] = {}
    for placeholder in found:
        first_use.setdefault(placeholder.key, placeholder)
    missing = [p for key, p in first_use.items() if key not in owners]
    if len(missing) == 1:
        raise PlaceholderError(
            f"No parameter for the placeholder {_describe(missing, sql)}: add a parameter with the key "
            f"{missing[0].name} (a leading @, # or $ is allowed)."
        )
    if missing:
        raise PlaceholderError(
            f"No parameter for the placeholders {_describe(missing, sql)}: add parameters with these keys "
            "(a leading @, # or $ is allowed)."
        )
    for placeholder in found:
        if len(owners[placeholder.key]) > 1:
            raise PlaceholderError(
                f"The placeholder {_describe([placeholder], sql)} matches the parameters "
                f"{' and '.join(owners[placeholder.key])}: keep one of them."
            )
    if stray := _stray_marker(tokens, dialect):
        where = "in this comment or quoted name " if stray.kind != PUNCT else ""
        raise PlaceholderError(
            f"line {line_of(sql, stray.start)}: the query binds :name placeholders, so the driver would also "
            f"take the ? {where}for a parameter marker; write it another way."
        )
    return found


def problem(sql: str, dialect: str, keys: Iterable[str]) -> str | None:
    """Why saving this query would be refused for its placeholders, or None.

    SQL that cannot be read at all is not refused here: the preview says why.
    """
    try:
        check(sql, dialect, keys)
    except PlaceholderError as exc:
        return str(exc)
    except SqlError:
        return None
    return None


# --------------------------------------------------------------------------
# Binding
# --------------------------------------------------------------------------


def _bind_batch(text: str, dialect: str, params: list[_Param], values: dict[str, str]) -> Batch:
    tokens = tokenize(text, dialect)
    edits = declaration_edits(tokens, params)
    names = []
    for placeholder in placeholders(tokens):
        if any(e.start <= placeholder.start < e.end for e in edits):
            continue  # inside a default the parameter replaces
        edits.append(Edit(placeholder.start, placeholder.end, "?"))
        names.append(placeholder.name)
    return Batch(edited(text, edits), tuple(names), tuple(values[key_name(n)] for n in names))


def _has_code(text: str, dialect: str) -> bool:
    return any(t.kind not in TRIVIA for t in tokenize(text, dialect))


_BLOCK_ENDS = ("IF", "LOOP", "WHILE", "REPEAT", "FOR")  # END IF & co. close a statement, not a block


def _statements(text: str, dialect: str) -> list[str]:
    """The batch's statements, split after each ``;`` outside BEGIN ... END and CASE ... END."""
    tokens = [t for t in tokenize(text, dialect) if t.kind not in TRIVIA]
    ends, depth, skip = [], 0, False
    for token, after in zip(tokens, [*tokens[1:], None]):
        if skip:
            skip = False
            continue
        following = after.upper if after else ""
        if token.upper == "END":
            skip = following in (*_BLOCK_ENDS, "CASE")
            depth -= bool(depth) and following not in _BLOCK_ENDS
        elif token.upper == "CASE" or (token.upper == "BEGIN" and after and following != "WORK" and after.text != ";"):
            depth += 1  # a BEGIN that starts a transaction opens no block
        elif token.text == ";" and depth == 0:
            ends.append(token.end)
    bounds = zip([0, *ends], [*ends, len(text)])
    return [piece for start, end in bounds if (piece := text[start:end].strip()) and _has_code(piece, dialect)]


def bind(sql: str, dialect: str, params: Iterable[_Param]) -> list[Batch]:
    """The batches that will run (SPEC 3.6) with DECLARE/SET defaults replaced and placeholders bound.

    ``params`` are resolved (parse(...) expanded). Raises SqlError when the
    SQL cannot be prepared or a placeholder has no parameter.
    """
    dialect = check_dialect(dialect)
    params = list(params)
    if not check(sql, dialect, [p.key for p in params]):
        return [_bind_batch(text, dialect, params, {}) for text in prepare(sql, dialect)]
    values = {key_name(p.key): p.value for p in params}
    batches = []
    for text in prepare(sql, dialect):
        if dialect == "mysql" and placeholders(tokenize(text, dialect)):
            batches += [_bind_batch(piece, dialect, params, values) for piece in _statements(text, dialect)]
        else:
            batches.append(_bind_batch(text, dialect, params, values))
    return batches


# --------------------------------------------------------------------------
# What the preview says
# --------------------------------------------------------------------------


def unused(sql: str, dialect: str, keys: Iterable[str]) -> list[str]:
    """Keys that match neither a placeholder nor a DECLARE/SET default of the query ([] when it cannot be read)."""
    try:
        names = {p.key for p in placeholders(tokenize(sql, check_dialect(dialect)))}
        declared = {v.lower() for v in assigned_variables(sql, dialect or "other")}
    except SqlError:
        return []
    return [k for k in keys if key_name(k) not in names and k.strip().lower() not in declared]


@dataclass(frozen=True)
class Binding:
    """A marker of the prepared SQL and what it is bound to, as the preview and the log show it."""

    batch: int  # from 1
    marker: int  # from 1 within its batch
    name: str
    shown: str  # quoted, or masked when the parameter is sensitive


def _shown(value: str, param: _Param) -> str:
    # Masked by its key, however short the value (a masker leaves values that short alone).
    return MASK if getattr(param, "sensitive", False) else json.dumps(value, ensure_ascii=False)


def bindings(batches: list[Batch], params: Iterable[_Param]) -> list[Binding]:
    by_name = {key_name(p.key): p for p in params}
    return [
        Binding(number, marker, name, _shown(value, by_name[key_name(name)]))
        for number, batch in enumerate(batches, 1)
        for marker, (name, value) in enumerate(zip(batch.names, batch.values), 1)
    ]


def bound_summary(found: list[Binding]) -> str:
    """Each placeholder once, with its value: ":start = "2024-03-01", :country = ********"."""
    first: dict[str, Binding] = {}
    for binding in found:
        first.setdefault(binding.name.lower(), binding)
    return ", ".join(f":{b.name} = {b.shown}" for b in first.values())
