"""What every protocol client shares: the error type and the client registry.

Each client module wraps one protocol behind the same few verbs — `test()`,
`list()`, `download()`, `upload()` — and raises only ClientError, whose
`permanent` flag tells the retry policy whether trying again can help.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import Enum


class ClientError(Exception):
    """A failure talking to an external system; the message names it, never a secret."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class IfExists(str, Enum):
    FAIL = "fail"
    OVERWRITE = "overwrite"
    SKIP = "skip"


@dataclass(frozen=True)
class UploadResult:
    remote_path: str
    skipped: bool = False


def join_remote(base: str, *parts: str) -> str:
    """Join POSIX-style remote path parts below `base`, refusing `..` escapes."""
    path = base or ""
    for part in parts:
        if not part:
            continue
        if any(piece == ".." for piece in part.replace("\\", "/").split("/")):
            raise ClientError(f"The path “{part}” may not contain “..”.", permanent=True)
        path = posixpath.join(path, part) if path else part
    return path


def temporary_name(name: str) -> str:
    """A hidden name beside the final one, so a partial upload is never seen as the file."""
    import secrets

    return f".{name}.{secrets.token_hex(4)}.part"
