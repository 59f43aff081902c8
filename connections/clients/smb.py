"""SMB (2/3) file shares: test, list, download and atomic upload over smbprotocol's smbclient.

Each session gets its own connection cache, closed at the end, so two tasks
on one worker never share (or tear down) each other's SMB connection; the
port and the cache go with every call.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

# smbprotocol notices a dead server only through its keep-alive echo, sent
# after this many idle seconds (default 600) and given as long again to be
# answered. Read when a connection is made, so it must be set before that.
os.environ.setdefault("SMB_EXPERIMENTAL_TRANSPORT_RECEIVE_TIMEOUT", "60")

import smbclient  # noqa: E402
from smbclient._io import SMBFileTransaction, SMBRawIO, set_info  # noqa: E402
from smbprotocol import exceptions as smb_errors  # noqa: E402
from smbprotocol._text import to_text  # noqa: E402
from smbprotocol.connection import Connection  # noqa: E402
from smbprotocol.file_info import FileRenameInformation  # noqa: E402
from smbprotocol.header import NtStatus  # noqa: E402
from smbprotocol.open import CreateOptions, FilePipePrinterAccessMask  # noqa: E402

from connections.clients import deadline, smb_wire  # noqa: E402
from connections.clients.base import ClientError, Entry, FileServerClient, RemoteNotFound, join_remote  # noqa: E402

CONNECT_TIMEOUT = 20
NOT_FOUND = (smb_errors.ObjectNameNotFound, smb_errors.ObjectPathNotFound, smb_errors.NoSuchFile)


class SmbClient(deadline.WatchedSession, FileServerClient):
    # smbclient raises its own exception types besides OSError.
    TRANSFER_ERRORS = (Exception,)

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.cache: dict | None = None

    @property
    def options(self) -> dict:
        """What every smbclient call takes; a call that must connect again waits no longer than the run has left."""
        return {
            "port": self.conn.effective_port,
            "connection_cache": self.cache,
            "connection_timeout": deadline.limit(CONNECT_TIMEOUT),
            "username": _login_name(self.conn),
            "password": self.conn.password or None,
        }

    def open(self) -> None:
        conn, cache = self.conn, {}
        port = conn.effective_port
        try:
            # The connection first, to see whether the server can encrypt: smbclient asks for
            # encryption only when told (else it signs), and a server without it would refuse.
            connection = Connection(smbclient.ClientConfig().client_guid, conn.host, port)
            cache[f"{conn.host.lower()}:{port}"] = connection
            connection.connect(timeout=deadline.limit(CONNECT_TIMEOUT))
            session = smbclient.register_session(
                conn.host, username=_login_name(conn), password=conn.password or None, port=port,
                encrypt=bool(connection.supports_encryption), connection_timeout=deadline.limit(CONNECT_TIMEOUT), connection_cache=cache,
            )
        except Exception as exc:  # noqa: BLE001
            smbclient.reset_connection_cache(fail_on_error=False, connection_cache=cache)
            raise _map_error(exc, f"Cannot connect to {conn.host}:{port} ({conn})") from None
        if smb_wire.uses_gcm(connection, session):
            smb_wire.decrypt_on_receipt(connection)
        self.cache = cache
        try:
            self._check_share()
        except ClientError:
            self.close()
            raise

    def close(self) -> None:
        if self.cache is not None:
            smbclient.reset_connection_cache(fail_on_error=False, connection_cache=self.cache)
        self.cache = None

    def shut(self) -> None:
        # Not transport.close(): it takes the lock a send holds while blocked on a server that stopped
        # reading, and would wait with it. shutdown() fails that send at once, and its receive thread
        # sees the end of the stream, closes the transport and wakes every request still waiting.
        for connection in list((self.cache or {}).values()):
            deadline.shut_socket(getattr(getattr(connection, "transport", None), "_sock", None))

    def test(self) -> str:
        """Connect, log in, open the share and list the base folder."""
        conn = self.conn
        with self:
            entries = self.list()
        return (
            f"Connected to \\\\{conn.host}\\{conn.share} (port {conn.effective_port}) as {_login_name(conn)}; "
            f"{len(entries)} entries in “{conn.folder or '.'}”."
        )

    def remote_path(self, text: str) -> str:
        # Windows users write share paths with backslashes.
        return text.replace("\\", "/")

    def _check_share(self) -> None:
        # A missing share comes back from smbclient as a plain "not found" (after
        # a DFS lookup), which a wildcard search would read as "no match".
        conn = self.conn
        try:
            smbclient.stat(self.unc(""), **self.options)
        except Exception as exc:  # noqa: BLE001
            error = _map_error(exc, f"Cannot open the share {conn.share} on {conn.host} ({self.label})")
            if isinstance(error, RemoteNotFound):
                raise ClientError(f"The share “{conn.share}” does not exist on {conn.host} ({self.label}).", permanent=True) from None
            raise error from None

    def path(self, *parts: str) -> str:
        return join_remote(self.conn.folder.replace("\\", "/"), *parts)

    @staticmethod
    def inside(path: str) -> str:
        """A path within the share as SMB writes it: a\\b\\c."""
        return "\\".join(p for p in path.replace("\\", "/").split("/") if p)

    def unc(self, path: str) -> str:
        return "\\".join(filter(None, [rf"\\{self.conn.host}\{self.conn.share}", self.inside(path)]))

    def entries(self, folder: str = "") -> list[Entry]:
        path = self.path(folder)
        try:
            found = [Entry(e.name, e.is_dir()) for e in smbclient.scandir(self.unc(path), **self.options)]
        except Exception as exc:  # noqa: BLE001 - every smbprotocol failure becomes a ClientError
            raise self._error("list", path, exc) from None
        return sorted(found)

    def download(self, remote: str, local: Path) -> None:
        path = self.path(remote)
        try:
            with smbclient.open_file(self.unc(path), mode="rb", buffering=0, **self.options) as src, open(local, "wb") as out:
                pipe = smb_wire.Pipeline(src.fd, src.fd.connection.max_read_size)
                size = src.fd.end_of_file
                reads = (lambda at=at: pipe.read(at, min(pipe.block, size - at)) for at in range(0, size, pipe.block))
                for response, (offset, length) in pipe.answers(reads):
                    data = smb_wire.read_data(response)
                    if len(data) != length:
                        raise ClientError(f"the server sent {len(data)} of the {length} bytes at {offset}")
                    out.write(data)
            expected = smbclient.stat(self.unc(path), **self.options).st_size
        except Exception as exc:  # noqa: BLE001
            raise self._error("download", path, exc) from None
        received = local.stat().st_size
        if received != expected:
            raise ClientError(f"Download of {path} from {self.label} ended at {received} of {expected} bytes.")

    def exists(self, path: str) -> bool:
        try:
            smbclient.stat(self.unc(path), **self.options)
            return True
        except Exception as exc:  # noqa: BLE001
            error = self._error("check", path, exc)
            if isinstance(error, RemoteNotFound):
                return False
            raise error from None

    def _put(self, local: Path, remote: str) -> None:
        with open(local, "rb") as src, smbclient.open_file(self.unc(remote), mode="wb", buffering=0, **self.options) as dst:
            pipe = smb_wire.Pipeline(dst.fd, dst.fd.connection.max_write_size)
            for response, (offset, length) in pipe.answers(pipe.writes(src)):
                # A short write would leave a hole that the size check after the upload cannot see.
                if (count := smb_wire.written(response)) != length:
                    raise ClientError(f"the server wrote {count} of the {length} bytes at {offset}")

    def _size(self, path: str) -> int | None:
        return smbclient.stat(self.unc(path), **self.options).st_size

    def _rename(self, temp: str, final: str, *, overwrite: bool) -> None:
        """One server-side rename; without `replace` an existing target is refused (no race with "fail").

        Not smbclient.rename/replace: they first open the target for
        FILE_EXECUTE, which Samba denies on an existing file without an x
        bit (a vendor's 0644 file), so an overwrite would fail.
        """
        options = dict(self.options, mode="r", share_access="rwd", create_options=CreateOptions.FILE_OPEN_REPARSE_POINT)
        with SMBRawIO(self.unc(temp), desired_access=FilePipePrinterAccessMask.DELETE, **options) as source:
            with SMBFileTransaction(source) as transaction:
                rename = FileRenameInformation()
                rename["replace_if_exists"] = overwrite
                rename["file_name"] = to_text(self.inside(final))
                set_info(transaction, rename)

    def _remove(self, path: str) -> None:
        smbclient.remove(self.unc(path), **self.options)

    def _error(self, verb: str, path: str, exc: BaseException) -> ClientError:
        return _map_error(exc, f"Cannot {verb} {path or 'the base folder'} on {self.label}")


def _login_name(conn) -> str:
    return f"{conn.domain}\\{conn.username}" if conn.domain else conn.username


def _map_error(exc: BaseException, doing: str) -> ClientError:
    # smbclient's SMBOSError carries an errno but is not FileNotFoundError & co.
    code = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, smb_errors.BadNetworkName) or getattr(exc, "ntstatus", None) == NtStatus.STATUS_BAD_NETWORK_NAME:
        return ClientError(f"{doing}: the share does not exist.", permanent=True)
    if isinstance(exc, NOT_FOUND) or code == errno.ENOENT:
        return RemoteNotFound(f"{doing}: it does not exist.")
    if isinstance(exc, smb_errors.ObjectNameInvalid) or getattr(exc, "ntstatus", None) == NtStatus.STATUS_OBJECT_NAME_INVALID:
        return ClientError(f'{doing}: the server refuses the name (SMB names may not hold \\ / : * ? " < > |).', permanent=True)
    if isinstance(exc, smb_errors.ObjectNameCollision) or code == errno.EEXIST:
        return ClientError(f"{doing}: the name is already taken.", permanent=True)
    if isinstance(exc, smb_errors.AccessDenied) or code == errno.EACCES:
        return ClientError(f"{doing}: access denied.", permanent=True)
    if isinstance(exc, (smb_errors.LogonFailure, smb_errors.WrongPassword, smb_errors.SMBAuthenticationError)):
        return ClientError(f"{doing}: the login was refused (wrong user name or password).", permanent=True)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ClientError(f"{doing}: no answer in time.")
    if isinstance(exc, OSError) and exc.strerror:
        return ClientError(f"{doing}: {exc.strerror}.")
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return ClientError(f"{doing}: {message}")

