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
    """Join POSIX-style remote path parts below `base`; a part that would leave it is refused.

    No part may contain `..`. An absolute part is taken as it is, but only if
    it lies inside `base` (a base of "/" is the whole server; a blank base is
    the login's own folder, which no absolute path is inside). Backslashes
    count as separators too: SMB servers read them so.
    """
    path = base or ""
    for part in parts:
        if not part:
            continue
        pieces = part.replace("\\", "/").split("/")
        if ".." in pieces:
            raise ClientError(f"The path “{part}” may not contain “..”.", permanent=True)
        if pieces[0] == "":
            path = _absolute_inside(base, part)
        else:
            path = posixpath.join(path, part) if path else part
    return path


def outside_base(base: str, path: str) -> str | None:
    """Why `path` would leave `base`, or None: join_remote's rule, for checks when a task is saved."""
    try:
        join_remote(base, path)
    except ClientError as exc:
        return str(exc)
    return None


def _absolute_inside(base: str, part: str) -> str:
    root = posixpath.normpath(base.replace("\\", "/")) if base else ""
    target = posixpath.normpath(part.replace("\\", "/"))
    if root.startswith("/") and (target == root or target.startswith(root.rstrip("/") + "/")):
        return part
    where = f"the base folder “{base}”" if base else "the login's own folder (the connection has no base folder)"
    raise ClientError(f"The path “{part}” lies outside {where}.", permanent=True)


def temporary_name(name: str) -> str:
    """A hidden name beside the final one, so a partial upload is never seen as the file."""
    import secrets

    return f".{name}.{secrets.token_hex(4)}.part"


class AtomicUpload:
    """The upload every file-server client shares: the vendor never sees a partial file.

    The file is written under a hidden temporary name in the target folder and
    renamed into place; the temporary file is removed on any failure. A client
    provides `path()`, `exists()`, `_put()`, `_rename()`, `_remove_quietly()`,
    `_error()` and the exception types its transfers raise.
    """

    label: str
    TRANSFER_ERRORS: tuple[type[BaseException], ...] = (OSError,)

    def upload(self, local, folder: str, name: str, if_exists: IfExists = IfExists.FAIL) -> UploadResult:
        target_dir = self.path(folder)
        final = join_remote(target_dir, name)
        if self.exists(final):
            if if_exists == IfExists.SKIP:
                return UploadResult(final, skipped=True)
            if if_exists == IfExists.FAIL:
                raise ClientError(f"{final} already exists on {self.label}; the task is set to fail rather than overwrite.", permanent=True)
        temp = join_remote(target_dir, temporary_name(name))
        try:
            self._put(local, temp)
            self._rename(temp, final, overwrite=if_exists == IfExists.OVERWRITE)
        except ClientError:
            self._remove_quietly(temp)
            raise
        except self.TRANSFER_ERRORS as exc:
            self._remove_quietly(temp)
            raise self._error("upload", final, exc) from None
        except BaseException:
            self._remove_quietly(temp)
            raise
        return UploadResult(final)
