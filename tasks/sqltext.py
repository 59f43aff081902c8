"""SQL preparation (SPEC 3.6) and parameter insertion (SPEC 6, "In SQL").

Both work on tokens from a small lexer of our own rather than on text, so
string literals, comments and quoted identifiers are never edited. sqlparse's
lexer was not used: it knows neither SQL Server's nested block comments nor
dialect differences such as MySQL's backslash escapes, and its grouping adds
nothing here.

Decisions (pinned by tests/test_sqltext.py):

- ``GO`` separates batches when it is alone on its line (any case, optionally
  followed by a ``--`` comment). ``GO <count>`` is refused with an error:
  repeating a batch in an extract is almost never meant, and sending the line
  to the server would only give a confusing syntax error.
- ``USE <db>`` (with its optional ``;``) is removed only at the start of a
  statement, so MySQL's ``... USE INDEX (...)`` hints stay.
- ``SET NOCOUNT ON;`` goes before the first batch only: SET options last for
  the whole session, and all batches run in one session.
- Empty batches (only whitespace and comments) are dropped.
- Parameters are inserted into each batch after preparation, so a value is
  never read as SQL structure (a value holding "GO" stays a value).
- Only keys starting with ``@`` can match: SQL variables are ``@name``; a key
  like ``client`` is meant for file names and never touches SQL.
- A declaration without a default (``DECLARE @d date;``) is left alone; only
  existing defaults and ``SET`` values are replaced.
- A default ends at ``;``, at a ``,`` (next declaration), at the end of the
  batch, or at a keyword that starts a new statement (T-SQL does not need
  semicolons). Parentheses and CASE ... END are followed, so a default may
  span lines. Trailing comments stay in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DIALECTS",
    "NOCOUNT",
    "Edit",
    "SqlError",
    "assigned_variables",
    "check_dialect",
    "declaration_edits",
    "edited",
    "insert_parameters",
    "line_of",
    "prepare",
    "quoted_end",
    "show",
    "tokenize",
]

DIALECTS = ("mssql", "postgresql", "mysql", "sqlite", "other")
NOCOUNT = "SET NOCOUNT ON;\n"  # what Courier puts before a SQL Server query


class SqlError(ValueError):
    """SQL text that cannot be prepared."""


class _Parameter(Protocol):
    key: str
    value: str


@dataclass(frozen=True)
class Token:
    kind: str  # one of the constants below
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == WORD else ""


WS, NL, COMMENT, STRING, QUOTED, WORD, PUNCT = (
    "ws", "nl", "comment", "string", "quoted", "word", "punct",
)  # fmt: skip
TRIVIA = (WS, NL, COMMENT)

# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\r\f\v]+")
_WORD = re.compile(r"[\w@#$]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_]\w*)?\$")


def line_of(sql: str, offset: int) -> int:
    return sql.count("\n", 0, offset) + 1


def quoted_end(sql: str, start: int, close: str, backslash: bool) -> int:
    """End of a quoted run opened at ``start``; a doubled ``close`` is kept inside."""
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if backslash and char == "\\":
            index += 2
        elif char == close and sql.startswith(close * 2, index):
            index += 2
        elif char == close:
            return index + 1
        else:
            index += 1
    what = "string literal" if close == "'" else f"quoted name ({sql[start]}...{close})"
    raise SqlError(f"unterminated {what} starting on line {line_of(sql, start)}")


def _block_comment_end(sql: str, start: int, nested: bool) -> int:
    depth, index = 0, start
    while index < len(sql):
        if sql.startswith("/*", index) and (nested or depth == 0):
            depth, index = depth + 1, index + 2
        elif sql.startswith("*/", index):
            depth, index = depth - 1, index + 2
            if depth == 0:
                return index
        else:
            index += 1
    raise SqlError(f"unterminated /* comment starting on line {line_of(sql, start)}")


def _line_comment_at(sql: str, index: int, dialect: str) -> bool:
    if sql.startswith("--", index):
        # MySQL needs a space after "--" (so "1--1" is arithmetic there).
        after = sql[index + 2 : index + 3]
        return dialect != "mysql" or after == "" or after.isspace()
    return dialect == "mysql" and sql[index] == "#"


def _string_prefix_at(sql: str, index: int) -> bool:
    """N'..', E'..', X'..', B'..': a one-letter prefix glued to a string."""
    return (
        sql[index] in "NnEeXxBb"
        and sql[index + 1 : index + 2] == "'"
        and (index == 0 or not _WORD.match(sql[index - 1]))
    )


def _lex_one(sql: str, i: int, dialect: str) -> tuple[str, int]:
    """The kind and end of the token starting at ``i``."""
    char = sql[i]
    if char == "\n":
        return NL, i + 1
    if spaces := _SPACES.match(sql, i):
        return WS, spaces.end()
    if _line_comment_at(sql, i, dialect):
        newline = sql.find("\n", i)
        return COMMENT, len(sql) if newline < 0 else newline
    if sql.startswith("/*", i):
        return COMMENT, _block_comment_end(sql, i, dialect in ("mssql", "postgresql"))
    if char == "'":
        return STRING, quoted_end(sql, i, "'", dialect == "mysql")
    if _string_prefix_at(sql, i):
        escapes = dialect == "mysql" or (dialect == "postgresql" and char in "Ee")
        return STRING, quoted_end(sql, i + 1, "'", escapes)
    if char == '"':
        # MySQL reads "..." as a string by default, with backslash escapes.
        kind = STRING if dialect == "mysql" else QUOTED
        return kind, quoted_end(sql, i, '"', dialect == "mysql")
    if char == "[" and dialect in ("mssql", "sqlite", "other"):
        return QUOTED, quoted_end(sql, i, "]", False)
    if char == "`" and dialect in ("mysql", "sqlite", "other"):
        return QUOTED, quoted_end(sql, i, "`", False)
    if char == "$" and dialect == "postgresql" and (tag := _DOLLAR_TAG.match(sql, i)):
        close = sql.find(tag.group(), tag.end())
        if close < 0:
            raise SqlError(f"unterminated $-quoted string starting on line {line_of(sql, i)}")
        return STRING, close + len(tag.group())
    if word := _WORD.match(sql, i):
        return WORD, word.end()
    return PUNCT, i + (2 if sql.startswith(":=", i) else 1)


def tokenize(sql: str, dialect: str) -> list[Token]:
    """Split ``sql`` into tokens; joining their texts gives ``sql`` back."""
    dialect = check_dialect(dialect)
    tokens: list[Token] = []
    index = 0
    while index < len(sql):
        kind, end = _lex_one(sql, index, dialect)
        tokens.append(Token(kind, sql[index:end], index))
        index = end
    return tokens


def check_dialect(dialect: str) -> str:
    """The dialect to use; a connection saved with none is "other"."""
    dialect = dialect or "other"
    if dialect not in DIALECTS:
        raise SqlError(f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    return dialect


def _text(tokens: Iterable[Token]) -> str:
    return "".join(token.text for token in tokens)


# --------------------------------------------------------------------------
# Preparation: batches, USE, NOCOUNT
# --------------------------------------------------------------------------


def _lines(tokens: list[Token]) -> list[list[Token]]:
    """Tokens grouped by physical line; each NL token ends its line."""
    lines: list[list[Token]] = [[]]
    for token in tokens:
        lines[-1].append(token)
        if token.kind == NL:
            lines.append([])
    return lines


def _is_go_line(line: list[Token], sql: str) -> bool:
    code = [t for t in line if t.kind not in (WS, NL)]
    if not code or code[0].upper != "GO":
        return False
    rest = code[1:]
    if rest and rest[-1].kind == COMMENT and not rest[-1].text.startswith("/*"):
        rest = rest[:-1]
    if len(rest) == 1 and rest[0].text.isdigit():
        raise SqlError(
            f"line {line_of(sql, code[0].start)}: 'GO {rest[0].text}' (repeat a batch) "
            "is not supported; write the batch out instead"
        )
    return not rest


def _split_batches(tokens: list[Token], sql: str) -> list[list[Token]]:
    batches: list[list[Token]] = [[]]
    for line in _lines(tokens):
        if _is_go_line(line, sql):
            batches.append([])
        else:
            batches[-1].extend(line)
    return batches


def _code_indexes(tokens: list[Token]) -> list[int]:
    return [i for i, token in enumerate(tokens) if token.kind not in TRIVIA]


def _starts_statement(tokens: list[Token], index: int, previous: int | None) -> bool:
    """True after ``;``, at the batch start, or first on its line."""
    if previous is None or tokens[previous].text == ";":
        return True
    return any(t.kind == NL for t in tokens[previous + 1 : index])


def _use_statement_span(tokens: list[Token], code: list[int], k: int) -> tuple[int, int] | None:
    """Token range [first, last] of a ``USE <db> [;]`` whose USE is code[k]."""
    use = code[k]
    if tokens[use].upper != "USE" or k + 1 >= len(code):
        return None
    if not _starts_statement(tokens, use, code[k - 1] if k else None):
        return None
    name = tokens[code[k + 1]]
    # MySQL index hints (USE INDEX / USE KEY) are not database changes.
    if name.kind not in (WORD, QUOTED) or name.upper in ("INDEX", "KEY"):
        return None
    last = code[k + 1]
    if k + 2 < len(code) and tokens[code[k + 2]].text == ";":
        last = code[k + 2]
    return use, last


def _widen_to_line(tokens: list[Token], first: int, last: int) -> tuple[int, int]:
    """Include the whole line when the statement is alone on it (no blank line left)."""
    before = first
    while before > 0 and tokens[before - 1].kind == WS:
        before -= 1
    after = last
    while after + 1 < len(tokens) and tokens[after + 1].kind == WS:
        after += 1
    line_start = before == 0 or tokens[before - 1].kind == NL
    line_end = after + 1 < len(tokens) and tokens[after + 1].kind == NL
    if line_start and (line_end or after + 1 == len(tokens)):
        return before, after + (1 if line_end else 0)
    return first, last


def _without_use(tokens: list[Token]) -> list[Token]:
    code = _code_indexes(tokens)
    removed: set[int] = set()
    for k in range(len(code)):
        span = _use_statement_span(tokens, code, k)
        if span is not None:
            first, last = _widen_to_line(tokens, *span)
            removed.update(range(first, last + 1))
    return [token for i, token in enumerate(tokens) if i not in removed]


def prepare(sql: str, dialect: str) -> list[str]:
    """The batches to run, in order, in one session (SPEC 3.6 steps 1 and 2)."""
    dialect = check_dialect(dialect)
    batches = []
    for batch in _split_batches(tokenize(sql, dialect), sql):
        kept = _without_use(batch)
        if _code_indexes(kept):
            batches.append(_text(kept).strip())
    if dialect == "mssql" and batches:
        batches[0] = NOCOUNT + batches[0]
    return batches


# --------------------------------------------------------------------------
# Parameter insertion
# --------------------------------------------------------------------------

# Keywords that begin a new statement: a default expression ends before one
# (T-SQL lets statements follow each other without semicolons).
_STATEMENT_START = frozenset(
    "ALTER BACKUP BEGIN BREAK BULK CHECKPOINT CLOSE COMMIT CONTINUE CREATE DBCC "
    "DEALLOCATE DECLARE DELETE DENY DROP ELSE END EXEC EXECUTE FETCH GO GOTO GRANT "
    "IF INSERT KILL MERGE OPEN PRINT RAISERROR RECONFIGURE RESTORE RETURN REVOKE "
    "ROLLBACK SAVE SELECT SET THROW TRUNCATE UPDATE USE WAITFOR WHILE WITH".split()
)


@dataclass(frozen=True)
class _Assignment:
    variable: str
    start: int  # character span of the value expression in the SQL text
    end: int


def _expression_end(code: list[Token], k: int) -> int:
    """Index in ``code`` just past the expression starting at ``k``."""
    depth = cases = 0
    while k < len(code):
        token = code[k]
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            if depth == 0:
                return k
            depth -= 1
        elif depth == 0 and token.text in (";", ","):
            return k
        elif depth == 0 and token.upper == "CASE":
            cases += 1
        elif depth == 0 and token.upper == "END" and cases:
            cases -= 1
        elif depth == 0 and not cases and token.upper in _STATEMENT_START:
            return k
        k += 1
    return k


def _value_at(code: list[Token], variable: Token, k: int) -> tuple[_Assignment, int]:
    """The value expression starting at code[k], just after ``=``."""
    end = _expression_end(code, k)
    if end > k:
        start, stop = code[k].start, code[end - 1].end
    else:  # "= ;": nothing to replace, insert right after the "="
        start = stop = code[k - 1].end
    return _Assignment(variable.text, start, stop), end


def _is_variable(token: Token) -> bool:
    return token.kind == WORD and token.text.startswith("@")


def _declare(code: list[Token], k: int) -> tuple[list[_Assignment], int]:
    """Defaults in ``DECLARE @a <type> [= x], @b ...`` starting after DECLARE."""
    found: list[_Assignment] = []
    while k < len(code) and _is_variable(code[k]):
        variable, k = code[k], k + 1
        depth = 0
        while k < len(code):  # the type, up to "=", "," or the statement end
            text = code[k].text
            depth += (text == "(") - (text == ")")
            if depth < 0:  # a ")" we did not open: the DECLARE sat inside brackets
                break
            if depth == 0 and (text in ("=", ",", ";") or code[k].upper in _STATEMENT_START):
                break
            k += 1
        if k < len(code) and code[k].text == "=":
            assignment, k = _value_at(code, variable, k + 1)
            found.append(assignment)
        if k < len(code) and code[k].text == ",":
            k += 1
            continue
        break
    return found, k


def _set(code: list[Token], k: int) -> tuple[list[_Assignment], int]:
    """Values in ``SET @a = x[, @b = y]`` (MySQL allows the list) after SET."""
    found: list[_Assignment] = []
    while (
        k + 1 < len(code)
        and _is_variable(code[k])
        and code[k + 1].text in ("=", ":=")
    ):
        assignment, k = _value_at(code, code[k], k + 2)
        found.append(assignment)
        if k < len(code) and code[k].text == ",":
            k += 1
            continue
        break
    return found, k


def _assignments(tokens: list[Token]) -> list[_Assignment]:
    code = [token for token in tokens if token.kind not in TRIVIA]
    found: list[_Assignment] = []
    update_pending = False  # the next SET belongs to an UPDATE statement
    k = 0
    while k < len(code):
        word = code[k].upper
        if code[k].text == ";":
            update_pending = False
        elif word == "UPDATE":
            # FOR UPDATE (cursors), ON UPDATE (keys), KEY UPDATE (MySQL) are clauses.
            update_pending = not (k and code[k - 1].upper in ("FOR", "ON", "KEY"))
        elif word == "SET" and update_pending:
            update_pending = False
        elif word in ("DECLARE", "SET"):
            more, k = (_declare if word == "DECLARE" else _set)(code, k + 1)
            found.extend(more)
            continue
        k += 1
    return found


def assigned_variables(sql: str, dialect: str = "mssql") -> list[str]:
    """Variables whose default or SET value a parameter would replace."""
    return [a.variable for a in _assignments(tokenize(sql, dialect))]


@dataclass(frozen=True)
class Edit:
    """Replace sql[start:end] by ``text`` (``start == end``: insert)."""

    start: int
    end: int
    text: str


def declaration_edits(tokens: list[Token], params: Iterable[_Parameter]) -> list[Edit]:
    """Edits that replace the defaults of matching DECLARE/SET statements by parameter values.

    ``params`` are already resolved (parse(...) expanded); values are inserted
    exactly as written. Keys match variable names whole and case-insensitively.
    """
    values = {p.key.strip().lower(): p.value for p in params if p.key.strip().startswith("@")}
    edits = []
    for assignment in _assignments(tokens) if values else ():
        value = values.get(assignment.variable.lower())
        if value is not None:
            # "= ;" had no default to take the place of.
            text = " " + value if assignment.start == assignment.end else value
            edits.append(Edit(assignment.start, assignment.end, text))
    return edits


def edited(sql: str, edits: Iterable[Edit]) -> str:
    """``sql`` with non-overlapping edits applied."""
    parts: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        parts += [sql[position : edit.start], edit.text]
        position = edit.end
    parts.append(sql[position:])
    return "".join(parts)


def insert_parameters(sql: str, params: Iterable[_Parameter], dialect: str = "mssql") -> str:
    """Replace the defaults of matching DECLARE/SET statements by parameter values."""
    return edited(sql, declaration_edits(tokenize(sql, dialect), params))


def show(batches: list[str]) -> str:
    """Batches as one text, joined by GO lines (callers mask secrets)."""
    return "\nGO\n".join(batches)
