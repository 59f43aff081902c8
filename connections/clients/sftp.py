"""SFTP: test, list, download and atomic upload over paramiko."""

from __future__ import annotations

import errno
import stat
from contextlib import contextmanager
from pathlib import Path

import paramiko

from connections.clients.base import ClientError, IfExists, UploadResult, join_remote, temporary_name
from connections.clients.remote import Entry, RemoteNotFound
from connections.clients.ssh_transport import open_ssh

# paramiko's default 32 KiB requests leave the link idle between round trips;
# pipelined writes with a larger buffer keep it busy.
WRITE_BUFFER = 1024 * 1024


class SftpClient:
    def __init__(self, conn, sftp: paramiko.SFTPClient) -> None:
        self.conn = conn
        self.sftp = sftp
        self.label = str(conn)

    def path(self, *parts: str) -> str:
        return join_remote(self.conn.folder, *parts)

    def list(self, folder: str = "") -> list[str]:
        try:
            return sorted(self.sftp.listdir(self.path(folder)))
        except OSError as exc:
            raise self._error("list", self.path(folder), exc) from None

    def entries(self, folder: str = "") -> list[Entry]:
        """Names in a folder with whether each is a folder (for wildcard matching)."""
        path = self.path(folder) or "."
        try:
            attrs = self.sftp.listdir_attr(path)
        except FileNotFoundError:
            raise RemoteNotFound(f"{path} does not exist on {self.label}.") from None
        except OSError as exc:
            raise self._error("list", path, exc) from None
        return sorted(Entry(a.filename, stat.S_ISDIR(a.st_mode or 0)) for a in attrs)

    def download(self, remote: str, local: Path) -> None:
        path = self.path(remote)
        try:
            self.sftp.get(path, str(local))
        except OSError as exc:
            raise self._error("download", path, exc) from None

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("check", path, exc) from None

    def upload(self, local: Path, folder: str, name: str, if_exists: IfExists = IfExists.FAIL) -> UploadResult:
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
        except OSError as exc:
            self._remove_quietly(temp)
            raise self._error("upload", final, exc) from None
        except BaseException:
            self._remove_quietly(temp)
            raise
        return UploadResult(final)

    def _put(self, local: Path, remote: str) -> None:
        size = local.stat().st_size
        with open(local, "rb") as src, self.sftp.open(remote, "wb", bufsize=WRITE_BUFFER) as dst:
            dst.set_pipelined(True)
            while chunk := src.read(WRITE_BUFFER):
                dst.write(chunk)
        written = self.sftp.stat(remote).st_size
        if written != size:
            raise ClientError(f"Upload of {remote} to {self.label} ended at {written} of {size} bytes.")

    def _rename(self, temp: str, final: str, *, overwrite: bool) -> None:
        if overwrite:
            # posix-rename@openssh.com replaces the target atomically.
            self.sftp.posix_rename(temp, final)
        else:
            # Plain SFTP rename refuses an existing target, which is what "fail" wants.
            self.sftp.rename(temp, final)

    def _remove_quietly(self, path: str) -> None:
        try:
            self.sftp.remove(path)
        except Exception:  # noqa: BLE001 - cleanup after a failure must not hide that failure
            pass

    def _error(self, verb: str, path: str, exc: OSError) -> ClientError:
        permanent = isinstance(exc, (FileNotFoundError, PermissionError)) or exc.errno in (errno.ENOENT, errno.EACCES)
        reason = exc.strerror or str(exc) or type(exc).__name__
        return ClientError(f"Cannot {verb} {path} on {self.label}: {reason}.", permanent=permanent)

    def is_dir(self, path: str) -> bool:
        try:
            return stat.S_ISDIR(self.sftp.stat(path).st_mode)
        except OSError:
            return False


@contextmanager
def session(conn, *, pin_unknown: bool = False):
    ssh = open_ssh(conn, pin_unknown=pin_unknown)
    try:
        try:
            sftp = ssh.open_sftp()
        except (paramiko.SSHException, OSError) as exc:
            raise ClientError(f"{conn} accepted the login but refused SFTP: {exc}") from None
        sftp.get_channel().settimeout(120)
        with sftp:
            yield SftpClient(conn, sftp)
    finally:
        ssh.close()


def test(conn) -> str:
    """Connect, log in and list the base folder; pins the host key on first success."""
    with session(conn, pin_unknown=True) as client:
        entries = client.list()
    return f"Connected to {conn.host}:{conn.effective_port} as {conn.username}; {len(entries)} entries in “{conn.folder or '.'}”."
