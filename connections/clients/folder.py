"""Local folder: a folder on the worker (a mounted share, or for demos).

Tasks may only write below the connection's base folder; uploads go through
the file servers' one atomic upload (base.FileServerClient): a hidden
temporary name, its size checked, then moved into place in one step.

Delivered files and the folders made for them belong to whoever reads that
folder, not to Courier: they get the modes of COURIER_FOLDER_UMASK (the
service's starting umask), not Courier's own private 0600/0700.
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from pathlib import Path

from django.conf import settings

from connections.clients.base import ClientError, Entry, FileServerClient, RemoteNotFound, temporary_name


class FolderClient(FileServerClient):
    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.base = Path(conn.folder).resolve()

    def test(self) -> str:
        if not self.base.is_dir():
            raise ClientError(f"The base folder {self.base} of {self.conn} does not exist.", permanent=True)
        if not os.access(self.base, os.W_OK):
            raise ClientError(f"The base folder {self.base} of {self.conn} is not writable by the worker.", permanent=True)
        return f"{self.base} exists and is writable; {len(self.list())} entries."

    def path(self, *parts: str) -> Path:
        target = self.base.joinpath(*[p for p in parts if p]).resolve()
        if target != self.base and self.base not in target.parents:
            raise ClientError(f"“{'/'.join(parts)}” lies outside the base folder of {self.conn}.", permanent=True)
        return target

    def entries(self, folder: str = "") -> list[Entry]:
        path = self.path(folder)
        try:
            with os.scandir(path) as found:
                return sorted(Entry(e.name, e.is_dir()) for e in found)
        except FileNotFoundError:
            raise RemoteNotFound(f"{path} does not exist ({self.conn}).") from None
        except OSError as exc:
            raise ClientError(f"Cannot list {path} ({self.conn}): {exc.strerror}.", permanent=True) from None

    def download(self, remote: str, local: Path) -> None:
        try:
            shutil.copyfile(self.path(remote), local)
        except OSError as exc:
            raise ClientError(f"Cannot read {self.path(remote)} ({self.conn}): {exc.strerror}.", permanent=True) from None

    def upload_paths(self, folder: str, name: str) -> tuple[str, str]:
        target_dir = self.path(folder)
        final = self.path(folder, name)
        if final.parent != target_dir:
            raise ClientError(f"The file name “{name}” may not contain a folder.", permanent=True)
        return str(final), str(target_dir / temporary_name(name))

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def _put(self, local: Path, remote: str) -> None:
        _make_folders(Path(remote).parent)
        shutil.copyfile(local, remote)
        _shared(Path(remote), 0o666)

    def _size(self, path: str) -> int | None:
        return os.stat(path).st_size

    def _rename(self, temp: str, final: str, *, overwrite: bool) -> None:
        if overwrite:
            os.replace(temp, final)
            return
        try:
            # link() fails when the name exists, so two writers cannot both win.
            os.link(temp, final)
        except FileExistsError:
            raise ClientError(f"{final} already exists ({self.conn}); the task is set to fail rather than overwrite.", permanent=True) from None
        # The file is in place; a temporary name left over would be harmless.
        with suppress(OSError):
            os.unlink(temp)

    def _remove(self, path: str) -> None:
        os.unlink(path)

    def _error(self, verb: str, path: str, exc: BaseException) -> ClientError:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return ClientError(f"Cannot {verb} {path} ({self.conn}): {reason}.", permanent=True)


def _shared(path: Path, full_mode: int) -> None:
    path.chmod(full_mode & ~settings.COURIER_FOLDER_UMASK)


def _make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents with the destination's modes."""
    if folder.is_dir():
        return
    _make_folders(folder.parent)
    try:
        folder.mkdir()
    except FileExistsError:
        return  # another writer made it first
    _shared(folder, 0o777)

