"""SFTP: test, list, download and atomic upload over paramiko."""

from __future__ import annotations

import errno
import io
import stat
from pathlib import Path

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from connections.clients import deadline
from connections.clients.base import ClientError, Entry, FileServerClient, RemoteNotFound, join_remote
from connections.clients.ssh_transport import open_ssh, raise_if_unpinned

# paramiko's default 32 KiB requests leave the link idle between round trips;
# pipelined writes with a larger buffer keep it busy.
WRITE_BUFFER = 1024 * 1024
# 32 KiB is the most data per write request every server must accept.
MAX_WRITE_DATA = 32768
# A server's own larger limit is used up to this much per request.
MAX_WRITE_ASKED = 256 * 1024
# SSH_FXP_WRITE around its data: length, type, request id, handle length, offset, data length.
WRITE_HEADER = 4 + 1 + 4 + 4 + 8 + 4
# paramiko's channel keeps this much of each SSH packet for framing.
CHANNEL_RESERVE = 64
LIMITS_EXTENSION = "limits@openssh.com"
# Read requests in flight per window of a download: 32 MiB of OpenSSH's 255 KiB requests, 4 MiB of 32 KiB ones.
READ_AHEAD = 128


def server_limits(sftp: paramiko.SFTPClient) -> tuple[int, int]:
    """The most data per read and per write request the server takes.

    OpenSSH (8.6 and later) announces its limits (255 KiB) through the
    limits@openssh.com extension; it is asked only of OpenSSH servers, which
    answer "unsupported" when too old. Any other server gets the 32 KiB the
    protocol guarantees, so an unknown server is never asked for more.
    """
    if not sftp.get_channel().get_transport().remote_version.startswith("SSH-2.0-OpenSSH_"):
        return MAX_WRITE_DATA, MAX_WRITE_DATA
    try:
        kind, reply = sftp._request(CMD_EXTENDED, LIMITS_EXTENSION)  # noqa: SLF001 - paramiko has no public call for extensions
    except (OSError, paramiko.SSHException):
        return MAX_WRITE_DATA, MAX_WRITE_DATA
    if kind != CMD_EXTENDED_REPLY:
        return MAX_WRITE_DATA, MAX_WRITE_DATA
    max_packet, max_read, max_write = reply.get_int64(), reply.get_int64(), reply.get_int64()

    def limit(stated_limit: int) -> int:
        # Zero means "no limit stated"; a whole message must also fit the packet limit (1 KiB left for headers).
        stated = [value for value in (stated_limit, max_packet - 1024) if value > 0]
        return min([*stated, MAX_WRITE_ASKED]) if stated else MAX_WRITE_DATA

    return limit(max_read), limit(max_write)


def write_request_size(channel: paramiko.Channel, handle: bytes, limit: int) -> int:
    """Data per SFTP write request so that a request fills whole SSH channel packets.

    With paramiko's default (32 KiB of data plus a ~30-byte header, a little
    over the 32 KiB packet OpenSSH allows) every request went out as two
    packets, a full one and a tiny one. Whole packets and fewer requests
    (each is answered by a status packet) nearly doubled the upload speed
    on loopback together with AES-GCM (bench/sftp_upload.py, docs/benchmarks.md).
    """
    per_packet = channel.out_max_packet_size - CHANNEL_RESERVE
    overhead = WRITE_HEADER + len(handle)
    packets = max(1, (min(limit, MAX_WRITE_ASKED) + overhead) // per_packet)
    return max(1, min(limit, packets * per_packet - overhead))


class SftpClient(deadline.WatchedSession, FileServerClient):
    # A dropped session raises paramiko's own errors, not OSError.
    TRANSFER_ERRORS = (OSError, EOFError, paramiko.SSHException)

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.ssh: paramiko.SSHClient | None = None
        self.sftp: paramiko.SFTPClient | None = None
        self._limits: tuple[int, int] | None = None  # read, write (server_limits)

    def open(self) -> None:
        self.ssh = open_ssh(self.conn)
        try:
            self.sftp = self.ssh.open_sftp()
        except (paramiko.SSHException, OSError) as exc:
            self.close()
            raise ClientError(f"{self.label} accepted the login but refused SFTP: {exc}") from None
        self.sftp.get_channel().settimeout(120)

    def close(self) -> None:
        for part in (self.sftp, self.ssh):
            if part is not None:
                part.close()
        self.sftp = self.ssh = None

    def shut(self) -> None:
        # The transport sees its socket end and closes every channel: blocked reads and writes fail.
        transport = self.ssh.get_transport() if self.ssh is not None else None
        deadline.shut_socket(transport.sock if transport is not None else None)

    def test(self) -> str:
        """Log in and list the base folder; with no pinned host key, only read the server's key (UnpinnedHostKey)."""
        raise_if_unpinned(self.conn)
        with self:
            entries = self.list()
        conn = self.conn
        return f"Connected to {conn.host}:{conn.effective_port} as {conn.username}; {len(entries)} entries in “{conn.folder or '.'}”."

    @property
    def write_limit(self) -> int:
        if self._limits is None:
            self._limits = server_limits(self.sftp)
        return self._limits[1]

    @property
    def read_limit(self) -> int:
        if self._limits is None:
            self._limits = server_limits(self.sftp)
        return self._limits[0]

    def path(self, *parts: str) -> str:
        return join_remote(self.conn.folder, *parts)

    def entries(self, folder: str = "") -> list[Entry]:
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
            size = self._get(path, local)
        except OSError as exc:
            raise self._error("download", path, exc) from None
        received = local.stat().st_size
        if received != size:
            raise ClientError(f"Download of {path} from {self.label} ended at {received} of {size} bytes.")

    def _get(self, path: str, local: Path) -> int:
        """Read the file READ_AHEAD requests at a time, each as large as the server allows; returns its size.

        paramiko's `get` asks 32 KiB at a time; its read-ahead either sends
        every request of the file at once (keeping what arrives in memory)
        or throttles with 10 ms sleeps. Windows of READ_AHEAD large requests
        keep the link busy with a bounded buffer: 0.4 → over 1 × OpenSSH's
        `sftp get` (bench/transfers.py, docs/benchmarks.md).
        """
        request = self.read_limit
        size = self.sftp.stat(path).st_size
        with self.sftp.open(path, "rb") as src, open(local, "wb") as out:
            src.MAX_REQUEST_SIZE = request  # readv splits its chunks at this size
            window = request * READ_AHEAD
            for start in range(0, size, window):
                end = min(size, start + window)
                for data in src.readv([(offset, min(request, end - offset)) for offset in range(start, end, request)]):
                    out.write(data)
        return size

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("check", path, exc) from None

    def _put(self, local: Path, remote: str) -> None:
        dst = self.sftp.open(remote, "wb", bufsize=WRITE_BUFFER)
        try:
            dst.set_pipelined(True)
            dst.MAX_REQUEST_SIZE = write_request_size(self.sftp.get_channel(), dst.handle, self.write_limit)
            with open(local, "rb") as src:
                while chunk := src.read(WRITE_BUFFER):
                    dst.write(chunk)
        except BaseException:
            _abandon(dst)
            raise
        dst.close()

    def _size(self, path: str) -> int | None:
        return self.sftp.stat(path).st_size

    def _rename(self, temp: str, final: str, *, overwrite: bool) -> None:
        if overwrite:
            # posix-rename@openssh.com replaces the target atomically.
            self.sftp.posix_rename(temp, final)
        else:
            # Plain SFTP rename refuses an existing target, which is what "fail" wants.
            self.sftp.rename(temp, final)

    def _remove(self, path: str) -> None:
        self.sftp.remove(path)

    def _error(self, verb: str, path: str, exc: BaseException) -> ClientError:
        code = getattr(exc, "errno", None)
        permanent = isinstance(exc, (FileNotFoundError, PermissionError)) or code in (errno.ENOENT, errno.EACCES)
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return ClientError(f"Cannot {verb} {path} on {self.label}: {reason}.", permanent=permanent)


def _abandon(remote_file: paramiko.SFTPFile) -> None:
    """Let go of a remote file whose transfer failed, without sending the rest of its buffer.

    Its session may be cut (the deadline shut it). paramiko's close() would
    flush over it and fail, and as the object is then still open, it would
    try again when collected, failing in whatever code runs at that moment.
    The partial file stays under its temporary name (FileServerClient
    removes it when it can).
    """
    remote_file._wbuffer = io.BytesIO()  # paramiko BufferedFile's unsent bytes
    try:
        remote_file.close()
    except (OSError, EOFError, paramiko.SSHException):
        remote_file._closed = True  # what close() sets last; paramiko checks it before closing again
