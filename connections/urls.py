"""URLs as Courier checks and shows them: where a connection's token may go, and a URL with its credentials masked.

Pure functions of strings (and of a connection's kind, name and base URL):
no network, no settings, so any layer may call them — the models when a
task is saved, the HTTP client when it fetches, the pages when they show a
code URL.

A URL is "within" a base URL when scheme, host and port are the same and
its path is the base path or below it at a segment boundary (/acme/x is
below /acme, /acmex is not). Anything that parsers may read two ways
(user info, backslashes, control characters, dot segments) is never within.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, unquote_plus, urljoin, urlsplit, urlunsplit

MASK = "********"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Query or fragment keys that carry credentials: token, private_token, access_token, key, api_key,
# client_secret, X-Amz-Signature, X-Amz-Credential, … (not "monkey" or "keys").
CREDENTIAL_KEY = re.compile(
    r"token|(?:^|[_.\-])(?:key|apikey|secret|password|passwd|passphrase|pwd|pass|sig|signature|auth|credentials?)$",
    re.IGNORECASE,
)
AMBIGUOUS = re.compile(r"[\x00-\x20\x7f\\]")


class Address(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str  # percent-decoded


def address(url: str) -> Address | None:
    """The normalised scheme, host, port and path of a plain http(s) URL; None for anything else."""
    if not isinstance(url, str) or AMBIGUOUS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or "@" in parts.netloc or not parts.hostname:
        return None
    path = unquote(parts.path) or "/"
    if {".", ".."} & set(path.split("/")):
        return None
    return Address(scheme, parts.hostname.rstrip("."), port or DEFAULT_PORTS[scheme], path)


def is_within(url: str, base: str) -> bool:
    """Whether `url` is `base` or below it (same scheme, host and port; the path at a segment boundary)."""
    target, home = address(url), address(base)
    if target is None or home is None or target[:3] != home[:3]:
        return False
    prefix = home.path.rstrip("/")
    return target.path == prefix or target.path.startswith(prefix + "/")


def base_url_problem(base: str) -> str:
    """Why `base` cannot be a connection's base URL ("" when it can)."""
    parts = urlsplit(base) if isinstance(base, str) else None
    if address(base) is None or parts.query or parts.fragment:
        return "Give a plain http:// or https:// URL, without user name, password, query or fragment."
    return ""


def scope_problem(conn, url: str) -> str:
    """Why the token of the web or GitLab connection `conn` may not be sent to `url` ("" when it may)."""
    if conn.kind not in ("web", "gitlab"):
        return ""
    if not conn.url:
        return f"The {conn.get_kind_display()} connection {conn} has no base URL: a superuser must set one before its token is sent anywhere."
    if conn.kind == "gitlab":
        # GitLab file URLs may be given relative to the instance.
        if not is_within(urljoin(conn.url.rstrip("/") + "/", url), conn.url):
            return f"“{shown(url)}” is not on the GitLab instance {shown(conn.url)} of {conn}: its token is sent only there."
    elif not is_within(url, conn.url):
        return f"“{shown(url)}” is not under {shown(conn.url)}, the base URL of {conn}: its token is sent only there."
    return ""


def shown(url: str) -> str:
    """The URL without user info, query or fragment, for messages that must never carry a credential."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


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
