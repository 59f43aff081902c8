"""What SQL a connection may run (SPEC 8.2), checked on the prepared batches before any of them runs.

The checks read tokens (tasks/sqltext.py), so the same words inside string
literals, comments and quoted names are left alone. Decisions (pinned by
tests/test_sqlbounds.py):

- SQLite connections never run ATTACH, DETACH, VACUUM or PRAGMA statements,
  nor load_extension() or fts3_tokenizer() anywhere, read only or not: they
  reach files beside the connection's database (Courier's own database among
  them) or load code.
  All of VACUUM is refused, not only VACUUM INTO: an extract has no use for it.
- "Read only" is enforced by the server (connections/clients/odbc.py). What is
  refused here is SQL that would undo that setting:
  - PostgreSQL: every batch runs in one read-only transaction that has already
    taken its snapshot, which no SET can make writable again; only ending it
    could. COMMIT, END, ROLLBACK (not ROLLBACK TO), ABORT and PREPARE
    TRANSACTION are refused.
  - MySQL/MariaDB: the access mode is a session variable any statement may
    set. READ WRITE, tx_read_only, transaction_read_only (also quoted: the
    server takes `tx_read_only` as the variable), and PREPARE/EXECUTE (dynamic
    SQL this check cannot read) are refused. The server runs the text
    of /*! ... */ and /*M! ... */ comments, so that text is checked as code.
  - Both: a string literal that would end elsewhere if the session read
    backslashes the other way (standard_conforming_strings; sql_mode's
    NO_BACKSLASH_ESCAPES or ANSI_QUOTES, which a batch may change for the next)
    is refused: the server would see code where this check saw a string.
  - SQLite: PRAGMA is refused anyway, so query_only cannot be switched off.
  - SQL Server and other databases have no read-only session. Statements that
    change data are refused, except on temporary tables and table variables:
    a guard against mistakes, not a bound (a stored procedure may still
    write). The login's own rights are the bound there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tasks.sqltext import COMMENT, NOCOUNT, QUOTED, STRING, TRIVIA, WORD, SqlError, Token, prepare, quoted_end, tokenize

__all__ = ["SqlRefused", "check", "check_for", "refusal_in"]

LABELS = {"mssql": "SQL Server", "postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite", "other": "other"}
EXCERPT = 60  # characters of the refused statement shown in the message


class SqlRefused(SqlError):
    """SQL the connection may not run; trying again cannot help."""


@dataclass(frozen=True)
class Refusal:
    doing: str  # "run ATTACH statements": what the connection may not do
    why: str = ""


Rule = Callable[[list[Token], str], "Refusal | None"]


@dataclass(frozen=True)
class Statement:
    number: int  # counted over all batches, from 1
    code: list[Token]  # without whitespace and comments
    text: str  # the batch the statement is in


# --------------------------------------------------------------------------
# Statements
# --------------------------------------------------------------------------

_EXECUTABLE_COMMENT = re.compile(r"/\*M?!\d*")


def _code_tokens(batch: str, dialect: str, offset: int = 0) -> list[Token]:
    """The batch's code tokens; MySQL's executable comments count as code."""
    code: list[Token] = []
    for token in tokenize(batch, dialect):
        opening = _EXECUTABLE_COMMENT.match(token.text) if dialect == "mysql" and token.kind == COMMENT else None
        if opening:
            code += _code_tokens(token.text[opening.end() : -2], dialect, offset + token.start + opening.end())
        elif token.kind not in TRIVIA:
            code.append(Token(token.kind, token.text, offset + token.start))
    return code


def _statements(batches: list[str], dialect: str) -> list[Statement]:
    statements: list[Statement] = []
    for batch in batches:
        current: list[Token] = []
        for token in [*_code_tokens(batch, dialect), None]:
            if token is None or token.text == ";":
                if current:
                    statements.append(Statement(len(statements) + 1, current, batch))
                current = []
            else:
                current.append(token)
    return statements


def _excerpt(statement: Statement) -> str:
    text = " ".join(statement.text[statement.code[0].start : statement.code[-1].end].split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 4].rstrip() + " ..."


def _name(token: Token, dialect: str) -> str:
    """A word or quoted name as the server would look it up, upper case."""
    if token.kind == WORD:
        return token.text.upper()
    # MySQL reads "..." as a name under ANSI_QUOTES.
    if token.kind == QUOTED or (dialect == "mysql" and token.kind == STRING and token.text[0] == '"'):
        return token.text[1:-1].upper()
    return ""


def _word(code: list[Token], index: int) -> str:
    return code[index].upper if 0 <= index < len(code) else ""


def _next_is(code: list[Token], index: int, text: str) -> bool:
    return index + 1 < len(code) and code[index + 1].text == text


# --------------------------------------------------------------------------
# SQLite: nothing that reaches another file or loads code
# --------------------------------------------------------------------------

SQLITE_STATEMENTS = ("ATTACH", "DETACH", "VACUUM", "PRAGMA")
# load_extension() loads a shared library; fts3_tokenizer() hands out and takes C
# pointers (its two-argument form is on in Debian's build the ODBC driver uses).
SQLITE_FUNCTIONS = ("LOAD_EXTENSION", "FTS3_TOKENIZER")


def _sqlite_reach(code: list[Token], dialect: str) -> Refusal | None:
    first = 0
    while _word(code, first) in ("EXPLAIN", "QUERY", "PLAN"):
        first += 1
    if _word(code, first) in SQLITE_STATEMENTS:
        return Refusal(f"run {_word(code, first)} statements")
    for index, token in enumerate(code):
        name = _name(token, dialect)
        # A quoted name is a function only when called: "load_extension" may name a column.
        if name in SQLITE_FUNCTIONS and (token.kind == WORD or _next_is(code, index, "(")):
            return Refusal(f"call {name.lower()}()")
    return None


# --------------------------------------------------------------------------
# Read only: nothing that undoes the server's setting
# --------------------------------------------------------------------------

_KEEP_TRANSACTION = "Courier keeps the whole query in one read-only transaction"


def _ends_transaction(code: list[Token], dialect: str) -> Refusal | None:
    first = _word(code, 0)
    after = 2 if _word(code, 1) in ("WORK", "TRANSACTION") else 1
    if first in ("COMMIT", "END", "ABORT") or (first == "ROLLBACK" and _word(code, after) != "TO"):
        return Refusal(f"run {first} statements", _KEEP_TRANSACTION)
    if first == "PREPARE" and _word(code, 1) == "TRANSACTION":
        return Refusal("run PREPARE TRANSACTION statements", _KEEP_TRANSACTION)
    return None


MYSQL_MODE_VARIABLES = ("TX_READ_ONLY", "TRANSACTION_READ_ONLY")


def _mysql_read_write(code: list[Token], dialect: str) -> Refusal | None:
    for index, token in enumerate(code):
        name = _name(token, dialect).lstrip("@")
        if name in MYSQL_MODE_VARIABLES:
            return Refusal(f"set {name.lower()}")
        if token.upper == "READ" and _word(code, index + 1) == "WRITE":
            return Refusal("switch to READ WRITE")
        if token.upper in ("PREPARE", "EXECUTE"):
            return Refusal(f"run {token.upper} statements", "Dynamic SQL cannot be checked")
    return None


_BACKSLASH_WHY = {
    "postgresql": "It would end elsewhere with standard_conforming_strings off; write E'...' for backslash escapes",
    "mysql": "It would end elsewhere under sql_mode NO_BACKSLASH_ESCAPES; double the quote ('') instead",
}


def _reads_one_way(text: str, dialect: str) -> bool:
    """True when the literal ends at the same place whether or not a backslash escapes."""
    if text[0] == "$" or (dialect == "postgresql" and text[0] in "Ee"):
        return True  # dollar-quoted, or an E'...' string that always reads escapes
    quote = 0 if text[0] in "'\"" else 1
    try:
        ends = {quoted_end(text, quote, text[quote], backslash) for backslash in (True, False)}
    except SqlError:
        return False
    return ends == {len(text)}


def _backslash_quote(code: list[Token], dialect: str) -> Refusal | None:
    if any(token.kind == STRING and not _reads_one_way(token.text, dialect) for token in code):
        return Refusal("use a string with a backslash before a quote", _BACKSLASH_WHY[dialect])
    return None


# Statement words that change data; a temporary table or table variable as their target is fine.
WRITES = frozenset(
    "INSERT UPDATE DELETE MERGE TRUNCATE CREATE ALTER DROP GRANT REVOKE DENY BULK BACKUP RESTORE DBCC "
    "RECONFIGURE SHUTDOWN KILL INTO".split()
)
# Not a statement of its own after these words (FOR UPDATE, ON DELETE, INSERT INTO) or before these (MERGE JOIN hints).
_AFTER = {"UPDATE": ("FOR", "ON"), "DELETE": ("ON",), "INTO": ("INSERT", "MERGE")}
_BEFORE = {"MERGE": ("JOIN", "UNION")}
_TARGET_NOISE = ("INTO", "FROM", "TABLE", "IF", "EXISTS")
_NO_SESSION = "There is no read-only session on this database; give the login read rights only"


def _temporary_target(code: list[Token], index: int) -> bool:
    index += 1
    while _word(code, index) in _TARGET_NOISE:
        index += 1
    return index < len(code) and code[index].text[:1] in "#@"


def _dynamic_sql(code: list[Token], index: int) -> bool:
    """EXEC('...'), EXEC (@sql), sp_executesql: SQL this check cannot read."""
    word = code[index].upper
    if word == "SP_EXECUTESQL":
        return True
    return word in ("EXEC", "EXECUTE") and index + 1 < len(code) and (code[index + 1].kind == STRING or code[index + 1].text == "(")


def _changes_data(code: list[Token], dialect: str) -> Refusal | None:
    for index, token in enumerate(code):
        word = token.upper
        if _dynamic_sql(code, index):
            return Refusal("run dynamic SQL", _NO_SESSION)
        if word not in WRITES or _word(code, index - 1) in _AFTER.get(word, ()) or _word(code, index + 1) in _BEFORE.get(word, ()):
            continue
        if not _temporary_target(code, index):
            return Refusal("run SELECT ... INTO" if word == "INTO" else f"run {word} statements", _NO_SESSION)
    return None


# --------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------

READ_ONLY_RULES = {
    "postgresql": (_ends_transaction, _backslash_quote),
    "mysql": (_mysql_read_write, _backslash_quote),
    "sqlite": (),  # PRAGMA is refused on every SQLite connection
    "mssql": (_changes_data,),
    "other": (_changes_data,),
}


def _rules(dialect: str, read_only: bool) -> list[tuple[str, Rule]]:
    """(who is refused, rule) pairs for this kind of connection."""
    label = LABELS[dialect]
    rules = [(f"{label} connections", _sqlite_reach)] if dialect == "sqlite" else []
    if read_only:
        rules += [(f"Read-only {label} connections", rule) for rule in READ_ONLY_RULES[dialect]]
    return rules


def check(batches: list[str], dialect: str, *, read_only: bool) -> None:
    """Raise SqlRefused naming the first statement the connection may not run."""
    dialect = dialect or "other"
    rules = _rules(dialect, read_only)
    if not rules:
        return
    if dialect == "mssql" and batches and batches[0].startswith(NOCOUNT):
        batches = [batches[0][len(NOCOUNT) :], *batches[1:]]  # Courier's own line is no statement of the query
    for statement in _statements(batches, dialect):
        for who, rule in rules:
            if refusal := rule(statement.code, dialect):
                why = f" {refusal.why}." if refusal.why else ""
                raise SqlRefused(f"{who} may not {refusal.doing} (statement {statement.number}: {_excerpt(statement)}).{why}")


def check_for(conn, batches: list[str]) -> None:
    """check() for a Database connection (anything with a dialect and a read_only flag), naming it."""
    try:
        check(batches, conn.dialect, read_only=conn.read_only)
    except SqlRefused as exc:
        raise SqlRefused(f"The query may not run on {conn}: {exc}") from None


def refusal_in(conn, sql: str) -> str | None:
    """Why the connection would refuse this query text, or None (also when it cannot be prepared: the preview says why)."""
    try:
        check_for(conn, prepare(sql, conn.dialect or "other"))
    except SqlRefused as exc:
        return str(exc)
    except SqlError:
        return None
    return None
