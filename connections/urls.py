"""URLs as Courier checks and shows them: where a connection's token may go, and a URL with its credentials masked.

Pure functions of strings: no network, no settings, so any layer may call
them — the models when a connection is saved, the HTTP clients when they
decide where a token may go (connections/clients/http.py), the pages when
they show a code URL.

A URL is "within" a base URL when scheme, host and port are the same and
its path is the base path or below it at a segment boundary (/acme/x is
below /acme, /acmex is not). Anything that parsers may read two ways
(user info, backslashes, control characters, dot segments) is never within.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
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


def shown(url: str) -> str:
    """The URL without user info, query or fragment, for messages that must never carry a credential."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
