"""Wildcard matching of remote paths, over any client that lists folders (`Client.entries`).

Matching follows the shell, one path segment at a time: `*`, `?`, `[seq]`
and `[!seq]` never match a `/`, and a name starting with “.” is matched only
by a segment that itself starts with “.” (so `*` never picks up a hidden
file, such as another uploader's temporary `.name.part`). Matching is
case-sensitive on every protocol.
"""

from __future__ import annotations

import fnmatch
import posixpath

from connections.clients.base import Client, ClientError, Entry, RemoteNotFound

MAGIC = frozenset("*?[")


def has_magic(text: str) -> bool:
    return any(char in MAGIC for char in text)


def _segments(pattern: str) -> list[str]:
    segments = [s for s in pattern.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise ClientError(f"The path “{pattern}” may not contain “..”.", permanent=True)
    if not segments:
        raise ClientError(f"The path “{pattern}” names no file.", permanent=True)
    return segments


def _matches(name: str, segment: str) -> bool:
    if name.startswith(".") and not segment.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, segment)


def _listing(client: Client, folder: str) -> list[Entry]:
    try:
        return client.entries(folder)
    except RemoteNotFound:
        return []


def expand(client: Client, pattern: str) -> list[str]:
    """Every file that matches `pattern` (relative to the client's base folder), sorted.

    Folders along the way may be wildcards too; a folder that does not exist
    is simply no match. Other listing failures (permissions, network) raise.
    """
    segments = _segments(pattern)
    folders = ["/" if pattern.startswith("/") else ""]
    for segment in segments[:-1]:
        if not has_magic(segment):
            folders = [posixpath.join(f, segment) for f in folders]
            continue
        folders = [
            posixpath.join(f, e.name) for f in folders for e in _listing(client, f) if e.is_dir and _matches(e.name, segment)
        ]
    last = segments[-1]
    found = []
    for folder in folders:
        for entry in _listing(client, folder):
            wanted = _matches(entry.name, last) if has_magic(last) else entry.name == last
            if wanted and not entry.is_dir:
                found.append(posixpath.join(folder, entry.name))
    return sorted(found)
