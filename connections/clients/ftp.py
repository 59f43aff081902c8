"""FTP and explicit FTPS: test, list, download and atomic upload over ftplib.

Every transfer is binary (TYPE I), so files arrive byte for byte. FTPS runs
AUTH TLS on the control connection and protects the data channel (PROT P);
the TLS context is capped at TLS 1.2 because ftplib's data channel breaks on
TLS 1.3 (SHUTDOWN_WHILE_IN_INIT when the transfer closes; TESTING.md §3).
The server's certificate is verified against the system's trusted CAs (or the
bundle named by SSL_CERT_FILE) unless the connection switches that off.
"""

from __future__ import annotations

import ftplib
import posixpath
import socket
import ssl
from pathlib import Path

from connections.clients import deadline
from connections.clients.base import ClientError, Entry, FileServerClient, RemoteNotFound, join_remote

# ftplib applies one timeout to the control socket and to every data socket.
TIMEOUT = 60
BLOCK = 1024 * 1024
# Replies that mean the server does not know a command (MLSD, SIZE).
UNKNOWN_COMMAND = ("500", "501", "502", "504")


def tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _KeepsDataSocket:
    """ftplib keeps its data connection to itself; the deadline's watchdog must be able to shut it."""

    data_socket: socket.socket | None = None

    def ntransfercmd(self, cmd, rest=None):
        conn, size = super().ntransfercmd(cmd, rest)
        self.data_socket = conn
        return conn, size


class _Ftp(_KeepsDataSocket, ftplib.FTP):
    pass


class _FtpTls(_KeepsDataSocket, ftplib.FTP_TLS):
    pass


class FtpClient(deadline.WatchedSession, FileServerClient):
    TRANSFER_ERRORS = (OSError, EOFError, ftplib.Error, ValueError)

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.ftp: ftplib.FTP | None = None

    def open(self) -> None:
        self.ftp = _connect(self.conn)

    def close(self) -> None:
        if self.ftp is None:
            return
        try:
            self.ftp.quit()
        except Exception:  # noqa: BLE001 - the server may already have gone; close the socket anyway
            self.ftp.close()
        self.ftp = None

    def shut(self) -> None:
        ftp = self.ftp
        for sock in (ftp.data_socket, ftp.sock) if ftp is not None else ():
            deadline.shut_socket(sock)

    def test(self) -> str:
        """Connect, log in (with TLS for FTPS) and list the base folder."""
        conn = self.conn
        with self:
            entries = self.list()
            security = f", {self.ftp.sock.version()}" if conn.tls else ""
        return (
            f"Connected to {conn.host}:{conn.effective_port} as {conn.username or 'anonymous'}{security}; "
            f"{len(entries)} entries in “{conn.folder or '.'}”."
        )

    def path(self, *parts: str) -> str:
        return join_remote(self.conn.folder, *parts)

    def entries(self, folder: str = "") -> list[Entry]:
        return self._entries_at(self.path(folder) or ".")

    def _entries_at(self, path: str) -> list[Entry]:
        try:
            found = [Entry(name, facts.get("type") == "dir") for name, facts in self.ftp.mlsd(path, facts=["type"])
                     if facts.get("type") not in ("cdir", "pdir")]
        except ftplib.error_perm as exc:
            if not str(exc).startswith(UNKNOWN_COMMAND):
                raise self._error("list", path, exc) from None
            found = self._entries_without_mlsd(path)
        except (OSError, EOFError, ftplib.Error) as exc:
            raise self._error("list", path, exc) from None
        return sorted(found)

    def _entries_without_mlsd(self, path: str) -> list[Entry]:
        # Old servers: NLST gives names only; SIZE answers for regular files only.
        try:
            names = [posixpath.basename(n.rstrip("/")) for n in self.ftp.nlst(path)]
            self.ftp.voidcmd("TYPE I")
        except (OSError, EOFError, ftplib.Error) as exc:
            raise self._error("list", path, exc) from None
        return [Entry(n, self._size(posixpath.join(path, n)) is None) for n in names if n not in (".", "..")]

    def _size(self, path: str) -> int | None:
        # SIZE counts bytes only in binary mode: _put, download and the NLST listing switch to it first.
        try:
            return self.ftp.size(path)
        except ftplib.error_perm:
            return None

    def download(self, remote: str, local: Path) -> None:
        path = self.path(remote)
        try:
            self.ftp.voidcmd("TYPE I")
            expected = self._size(path)
            with open(local, "wb") as out:
                self.ftp.retrbinary(f"RETR {path}", out.write, blocksize=BLOCK)
        except (OSError, EOFError, ftplib.Error, ValueError) as exc:
            raise self._error("download", path, exc) from None
        received = local.stat().st_size
        if expected is not None and received != expected:
            raise ClientError(f"Download of {path} from {self.label} ended at {received} of {expected} bytes.")

    def exists(self, path: str) -> bool:
        folder, name = posixpath.split(path)
        return any(entry.name == name for entry in self._entries_at(folder or "."))

    def _put(self, local: Path, remote: str) -> None:
        self.ftp.voidcmd("TYPE I")
        with open(local, "rb") as src:
            self.ftp.storbinary(f"STOR {remote}", src, blocksize=BLOCK)

    def _rename(self, temp: str, final: str, *, overwrite: bool) -> None:
        # FTP has no "rename unless the target exists": look once more right
        # before the rename, which leaves only a moment for another writer.
        if not overwrite and self.exists(final):
            raise ClientError(f"{final} appeared on {self.label} during the upload; not overwriting it.", permanent=True)
        try:
            self.ftp.rename(temp, final)
        except ftplib.error_perm:
            if not overwrite:
                raise
            # Some servers (IIS) refuse to rename onto an existing file.
            self.ftp.delete(final)
            self.ftp.rename(temp, final)

    def _remove(self, path: str) -> None:
        self.ftp.delete(path)

    def _error(self, verb: str, path: str, exc: BaseException) -> ClientError:
        if isinstance(exc, ftplib.error_perm):
            reply = str(exc)
            if reply.startswith("550"):
                return RemoteNotFound(f"Cannot {verb} {path} on {self.label}: {reply}")
            return ClientError(f"Cannot {verb} {path} on {self.label}: {reply}", permanent=True)
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return ClientError(f"Cannot {verb} {path} on {self.label}: no answer within {TIMEOUT} s.")
        reason = str(exc) or type(exc).__name__
        return ClientError(f"Cannot {verb} {path} on {self.label}: {reason}")


def _connect(conn) -> ftplib.FTP:
    label, port = str(conn), conn.effective_port
    timeout = deadline.limit(TIMEOUT)
    ftp = _FtpTls(context=tls_context(conn.verify_tls), timeout=timeout) if conn.tls else _Ftp(timeout=timeout)
    try:
        ftp.connect(conn.host, port, timeout=timeout)
        ftp.login(conn.username or "anonymous", conn.password or "")
        if conn.tls:
            ftp.prot_p()
    except ssl.SSLCertVerificationError as exc:
        ftp.close()
        raise ClientError(f"The TLS certificate of {conn.host}:{port} ({label}) is not trusted: {exc.verify_message}.", permanent=True) from None
    except ftplib.error_perm as exc:
        ftp.close()
        if str(exc).startswith("530"):
            raise ClientError(f"Login to {conn.host}:{port} as {conn.username or 'anonymous'} was refused ({label}): {exc}", permanent=True) from None
        raise ClientError(f"{conn.host}:{port} ({label}) refused the session: {exc}", permanent=True) from None
    except TimeoutError:
        ftp.close()
        raise ClientError(f"Timed out connecting to {conn.host}:{port} ({label}).") from None
    except (OSError, EOFError, ftplib.Error) as exc:
        ftp.close()
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ClientError(f"Cannot connect to {conn.host}:{port} ({label}): {reason}.") from None
    return ftp

