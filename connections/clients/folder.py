"""Local folder: a folder on the worker (a mounted share, or for demos).

Tasks may only write below the connection's base folder; uploads are written
under a hidden temporary name and then moved into place in one step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, temp)
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

