"""Local folder: a folder on the worker (a mounted share, or for demos).

Tasks may only write below the connection's base folder; uploads are written
under a hidden temporary name and then moved into place in one step.

Delivered files and the folders made for them belong to whoever reads that
folder, not to Courier: they get the modes of COURIER_FOLDER_UMASK (the
service's starting umask), not Courier's own private 0600/0700.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings

from connections.clients.base import Client, ClientError, Entry, IfExists, RemoteNotFound, UploadResult, temporary_name


class FolderClient(Client):
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

    def upload(self, local: Path, folder: str, name: str, if_exists: IfExists = IfExists.FAIL) -> UploadResult:
        target_dir = self.path(folder)
        final = self.path(folder, name)
        if final.parent != target_dir:
            raise ClientError(f"The file name “{name}” may not contain a folder.", permanent=True)
        if final.exists() and if_exists == IfExists.SKIP:
            return UploadResult(str(final), skipped=True)
        temp = target_dir / temporary_name(name)
        try:
            _make_folders(target_dir)
            shutil.copyfile(local, temp)
            _shared(temp, 0o666)
            if if_exists == IfExists.OVERWRITE:
                os.replace(temp, final)
            else:
                # link() fails when the name exists, so two writers cannot both win.
                os.link(temp, final)
        except FileExistsError:
            raise ClientError(f"{final} already exists ({self.conn}); the task is set to fail rather than overwrite.", permanent=True) from None
        except OSError as exc:
            raise ClientError(f"Cannot write {final} ({self.conn}): {exc.strerror}.", permanent=True) from None
        finally:
            temp.unlink(missing_ok=True)
        return UploadResult(str(final))


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

