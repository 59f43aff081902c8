"""One masker for every text Courier shows, stores or sends: run logs, previews, connection tests, pages, mails.

A `Masker` is built once from a set of secret strings and then masks any
number of texts. What counts as a secret is collected in one place,
`masker_for`: Courier's own keys, every secret field of the connections
involved, and the sensitive parameter values the caller passes. A stored
secret that cannot be decrypted raises `SecretError` there (SPEC §7: an
error, never used as-is); each caller turns it into its own clear failure.

The rules:

- Values shorter than MIN_SECRET_LENGTH characters are not masked: they
  occur everywhere by chance ("on", "12"), and a secret that short is not
  protected by hiding it anyway.
- A secret is masked as written; as JSON writes it inside a string (once or
  twice escaped, as `json.dumps` of an environment that holds a JSON
  variable does); HTML-escaped (a mail's HTML part); line by line when it spans lines (a key printed as is);
  hex-encoded (lower or upper case); and base64-encoded, standard or
  URL-safe, at each of the three byte alignments it can have inside a
  longer encoded blob. At an alignment only the whole 3-byte groups of the
  secret are stable, so up to two bytes at either end may stay visible in
  encoded form; the rest is hidden.
- Every occurrence of every form is found, overlapping ones included, and
  each run of overlapping spans becomes one MASK, so no fragment of a longer
  secret survives around a shorter one.

Masking is a second line of defence: a script that splits, reverses or
encrypts a secret is stopped by the sandbox, not here.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from django.conf import settings

from connections.models import SECRET_FIELDS, Connection

MASK = "********"
MIN_SECRET_LENGTH = 4
# The quick "anything here?" test looks at this many leading characters of
# each form, and only for texts up to _SHORT_TEXT characters: on longer ones
# (a base64 blob) one C-speed search per form is faster than the regex.
_PREFIX_CHARS = 10
_SHORT_TEXT = 256
_ODBC_PASSWORD = re.compile(r"(?:^|;)\s*(?:pwd|password)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)", re.IGNORECASE)


class Masker:
    """Replaces every form of the given secrets in a text by MASK.

    The forms are computed once here. For a short text `mask` first asks one
    regular expression whether it holds the start of any form at all (mostly
    it does not); it is shaped as a trie of the forms' first characters, so
    its cost hardly grows with their number or length. Only then is every
    form looked for. bench/masking.py measures it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        needles = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                needles |= _forms(secret)
        self.needles = tuple(sorted(needles, key=len, reverse=True))
        self._any = re.compile(_trie_pattern({n[:_PREFIX_CHARS] for n in self.needles})) if self.needles else None

    def mask(self, text: str) -> str:
        if not text or self._any is None or (len(text) <= _SHORT_TEXT and not self._any.search(text)):
            return text
        spans = []
        for needle in self.needles:
            start = text.find(needle)
            while start != -1:
                spans.append((start, start + len(needle)))
                start = text.find(needle, start + 1)
        return _replace(text, spans) if spans else text


class HideEverything(Masker):
    """For a page whose secrets cannot be read: every non-empty text is hidden whole."""

    def mask(self, text: str) -> str:
        return MASK if text else text


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    parts, end = [], 0
    for start, stop in sorted(spans):
        if start >= end:  # not inside the span before: a new mask
            parts += [text[end:start], MASK]
        end = max(end, stop)
    parts.append(text[end:])
    return "".join(parts)


def _escaped(secret: str) -> set[str]:
    once = json.dumps(secret, ensure_ascii=True)[1:-1]
    return {secret, once, json.dumps(once)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret)}


def _encoded(written: str) -> set[str]:
    data = written.encode("utf-8")
    forms = {data.hex(), data.hex().upper()}
    for skip in range(3):
        whole_groups = data[skip:][: (len(data) - skip) // 3 * 3]
        if whole_groups:
            forms.add(base64.b64encode(whole_groups).decode("ascii"))
            forms.add(base64.urlsafe_b64encode(whole_groups).decode("ascii"))
    return forms


def _forms(secret: str) -> set[str]:
    forms = set()
    for written in _escaped(secret):
        forms |= {written, *_encoded(written)}
    forms |= {line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_SECRET_LENGTH}
    return forms


def _trie_pattern(needles: Iterable[str]) -> str:
    """A regular expression matching any of `needles` (short ones), with shared prefixes written once."""
    trie: dict = {}
    for needle in needles:
        node = trie
        for char in needle:
            node = node.setdefault(char, {})
        node[""] = {}
    return _branch(trie)


def _branch(node: dict) -> str:
    ends_here = "" in node
    alternatives = [re.escape(char) + _branch(child) for char, child in sorted(node.items()) if char]
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    if ends_here:
        return f"(?:{body})?"
    return body


# --------------------------------------------------------------------------
# Collecting the secrets
# --------------------------------------------------------------------------


def _password_forms(password: str | None) -> list[str]:
    """A password as the settings hold it and as it is written inside a URL (a `.env` line, a client's error)."""
    return [password, quote(password, safe="")] if password else []


def courier_secrets() -> list[str]:
    """Courier's own keys, and the passwords of its database, broker and mail server."""
    values = [settings.SECRET_KEY, *settings.COURIER_SECRET_KEYS]
    redis_password = urlsplit(settings.REDIS_URL).password
    values += [settings.REDIS_URL, *_password_forms(redis_password)] if redis_password else []
    for db in settings.DATABASES.values():
        values += _password_forms(db.get("PASSWORD"))
    values += _password_forms(settings.EMAIL_HOST_PASSWORD)
    return [v for v in values if v]


def odbc_password(odbc: str) -> str:
    """The Pwd/Password of an ODBC connection string (a driver may quote it alone), blank when none."""
    found = _ODBC_PASSWORD.search(odbc)
    value = found.group(1).strip() if found else ""
    return value[1:-1].replace("}}", "}") if value.startswith("{") else value


def connection_secrets(connections: Iterable[Connection | None]) -> list[str]:
    """Every secret field of each connection; raises SecretError for one that cannot be decrypted."""
    values = []
    for conn in filter(None, connections):
        fields = {name: getattr(conn, name) for name in SECRET_FIELDS}
        values += [*fields.values(), odbc_password(fields["odbc"])]
    return [v for v in values if v]


def masker_for(connections: Iterable[Connection | None] = (), sensitive_values: Iterable[str] = ()) -> Masker:
    """The masker for a text about `connections`: their secrets, Courier's own, and `sensitive_values`.

    Raises SecretError when a secret of one of the connections cannot be decrypted.
    """
    return Masker([*courier_secrets(), *connection_secrets(connections), *sensitive_values])


# Query or fragment keys that carry credentials: token, private_token, access_token, key, api_key,
# client_secret, X-Amz-Signature, X-Amz-Credential, … (not "monkey" or "keys").
CREDENTIAL_KEY = re.compile(
    r"token|(?:^|[_.\-])(?:key|apikey|secret|password|passwd|passphrase|pwd|pass|sig|signature|auth|credentials?)$",
    re.IGNORECASE,
)


def mask_url(url: str) -> str:
    """The URL with the values of credential-like query/fragment keys and any user info masked; the rest kept as written."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    fragment = _masked_pairs(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, _masked_userinfo(parts.netloc), parts.path, _masked_pairs(parts.query), fragment))


def _masked_userinfo(netloc: str) -> str:
    if "@" not in netloc:
        return netloc
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    # A user name alone is often a token itself (https://<token>@github.com/…).
    return f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"


def _masked_pairs(text: str) -> str:
    pairs = []
    for pair in text.split("&"):
        key, equals, _ = pair.partition("=")
        pairs.append(f"{key}={MASK}" if equals and CREDENTIAL_KEY.search(unquote_plus(key)) else pair)
    return "&".join(pairs)
