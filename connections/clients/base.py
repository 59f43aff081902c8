"""The one interface every protocol client implements, and what the clients share.

Each kind of connection (connections/kinds.py) names a `Client` subclass in
its protocol's module (sftp.py, ftp.py, smb.py, folder.py, ssh.py, odbc.py,
http.py). A client is made for one connection with `kinds.client_for(conn)`
and does only the verbs its kind's uses need; the registry test checks that.
Every failure is a ClientError whose `permanent` flag tells the retry policy
whether trying again can help.
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO


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
    # The server's size of the uploaded file equalled the local size before the rename
    # (False when the server cannot tell a file's size, such as an FTP server without SIZE).
    verified: bool = False


@dataclass(frozen=True, order=True)
class Entry:
    """One name in a remote folder."""

    name: str
    is_dir: bool = False


class RemoteNotFound(ClientError):
    """A remote folder or file that does not exist (to a wildcard search: no match)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


RowSink = Callable[[list[str], Iterator[list[tuple]]], None]
LineSink = Callable[[str], None]


class Client:
    """One connection's client. Each verb is documented here once; a protocol overrides those it can do.

    Verbs other than `test()` are used inside a session, which connects and
    logs in on entry and always disconnects on exit:

        with client_for(conn) as client:
            for entry in client.entries("in"):
                ...

    Paths are relative to the connection's base folder and written with “/”.
    Messages name the connection and the path, never a secret. A verb the
    protocol cannot do raises a permanent ClientError.
    """

    def __init__(self, conn) -> None:
        self.conn = conn
        self.label = str(conn)

    def __enter__(self) -> Client:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        """Connect and log in. Protocols whose verbs each connect on their own (a query, a command, a web fetch) do nothing here."""

    def close(self) -> None:
        """Disconnect, also after a failure; never raises."""

    def test(self) -> str:
        """Really connect, look at what the connection is for, and say in one line what was found.

        Opens and closes its own session. An SFTP/SSH connection without a
        pinned host key only reads the server's key (ssh_transport.UnpinnedHostKey).
        """
        raise self._cannot("be tested")

    def remote_path(self, text: str) -> str:
        """A remote path as a person wrote it, in the “/” form the other verbs take (SMB users write “\\”)."""
        return text

    def entries(self, folder: str = "") -> list[Entry]:
        """The names in `folder`, sorted, each saying whether it is a folder; RemoteNotFound if there is no such folder."""
        raise self._cannot("list folders")

    def list(self, folder: str = "") -> list[str]:
        """The names in `folder`, sorted."""
        return [entry.name for entry in self.entries(folder)]

    def download(self, remote: str, local: Path) -> None:
        """Copy the file `remote` byte for byte into the local file `local`; a short copy is an error."""
        raise self._cannot("read files")

    def upload(self, local: Path, folder: str, name: str, if_exists: IfExists = IfExists.FAIL) -> UploadResult:
        """Put `local` into `folder` as `name` so that no one ever sees a partial file (SPEC §3.9).

        An existing file is kept and reported (FAIL), replaced (OVERWRITE) or
        left alone with `skipped` set (SKIP).
        """
        raise self._cannot("receive files")

    def fetch(self, url: str, path: str = "") -> bytes:
        """The body of the file at `url` (`path`: the file inside a repository named by a project URL)."""
        raise self._cannot("fetch URLs")

    def scope_problem(self, url: str) -> str:
        """Why this connection's token may not be sent to `url`; "" when it may, or when the kind sends none to URLs."""
        return ""

    def run_query(self, batches: list[str], sink: RowSink, *, batch: int, values: Sequence[Sequence[str]] = ()) -> bool:
        """Run the batches in order in one session; the first result set with columns goes to `sink(columns, row_batches)`.

        `values[i]` are bound, as text, to the ? markers of batch i (none: the
        batch is sent as it is). Returns whether a result set was found; rows
        come `batch` at a time.
        """
        raise self._cannot("run queries")

    def run_command(self, command: str, *, on_stdout: LineSink, on_stderr: LineSink,
                    stdout_file: BinaryIO | None = None, timeout: float) -> int:
        """Run `command`, passing each output line on as it comes; returns its exit status.

        Stdout is also copied byte for byte into `stdout_file` when given; a
        command still running after `timeout` seconds is stopped with a ClientError.
        """
        raise self._cannot("run commands")

    def _cannot(self, verb: str) -> ClientError:
        kind = self.conn.get_kind_display() if self.conn is not None else "this"
        return ClientError(f"{self.label} is a {kind} connection, which cannot {verb}.", permanent=True)


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
    return f".{name}.{secrets.token_hex(4)}.part"


class FileServerClient(Client):
    """What the file-server clients (SFTP, FTP, SMB, local folder) share: an upload the vendor never sees half done.

    The file is written under a hidden temporary name in the target folder,
    its size on the server is compared with the local size, and only then is
    it renamed into place; the temporary file is removed on any failure.
    Nothing is checked after the rename: many partner servers move a file
    away the moment it has its final name, and that is a delivery, not an
    error. A client provides `path()`, `exists()`, `_put()`, `_size()`,
    `_rename()`, `_remove()`, `_error()` and the exception types its
    transfers raise.
    """

    TRANSFER_ERRORS: tuple[type[BaseException], ...] = (OSError,)

    def upload(self, local, folder: str, name: str, if_exists: IfExists = IfExists.FAIL) -> UploadResult:
        final, temp = self.upload_paths(folder, name)
        if self.exists(final):
            if if_exists == IfExists.SKIP:
                return UploadResult(final, skipped=True)
            if if_exists == IfExists.FAIL:
                raise ClientError(f"{final} already exists on {self.label}; the task is set to fail rather than overwrite.", permanent=True)
        try:
            self._put(local, temp)
            verified = self._verify(temp, final, Path(local).stat().st_size)
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
        return UploadResult(final, verified=verified)

    def upload_paths(self, folder: str, name: str) -> tuple[str, str]:
        """The final path of `name` in `folder`, and the temporary path beside it."""
        target_dir = self.path(folder)
        return join_remote(target_dir, name), join_remote(target_dir, temporary_name(name))

    def _size(self, path: str) -> int | None:
        """The size of the file at `path` on the server, or None when the server cannot say."""
        raise NotImplementedError

    def _verify(self, temp: str, final: str, size: int) -> bool:
        """Whether the server holds exactly `size` bytes under the temporary name; a short or long file is an error."""
        held = self._size(temp)
        if held is None:
            return False
        if held != size:
            raise ClientError(
                f"{final} was not delivered to {self.label}: the server holds {held} of its {size} bytes "
                "(checked before the rename, so the final name was never used).",
            )
        return True

    def _remove_quietly(self, path: str) -> None:
        # Cleanup after a failure must not hide that failure.
        with suppress(Exception):
            self._remove(path)
