"""Large SMB reads and writes: many requests in flight, and a lean path for the bytes on encrypted sessions.

smbclient's file objects send one 1 MiB request and wait for its answer,
which leaves the link idle; `Pipeline` keeps up to IN_FLIGHT_BYTES of
requests as large as the server allows (Samba and Windows: 8 MiB) going,
within the credits the server has granted.

smbprotocol (pinned in requirements.txt; these functions use its internals)
builds every message from its Structure classes, copying an 8 MiB block
about ten times on its way out and again on its way in: at 256 MB that,
not the network, was the limit (py-spy, docs/benchmarks.md). On an
SMB 3.1.1 session encrypted with AES-GCM:

- `GcmWriter` reads the file straight into the plaintext of a WRITE
  request, encrypts it into a reused buffer and sends it without joining;
- `decrypt_on_receipt` makes the connection's receive thread read each
  packet into one buffer and decrypt it there, so smbprotocol's thread
  gets the plain message (as it does on an unencrypted session);

everything else (signing only, AES-CCM, SMB 2) takes smbprotocol's path.
"""

from __future__ import annotations

import errno
import math
import os
import select
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from smbprotocol.connection import Ciphers, Dialects, Request
from smbprotocol.exceptions import SMBException
from smbprotocol.header import Commands, Smb2Flags, SMB2HeaderRequest
from smbprotocol.open import SMB2WriteRequest

from connections.clients import deadline

LARGEST_BLOCK = 8 * 1024 * 1024  # Samba's and Windows' usual max read/write size with multi-credit
SMB2_BLOCK = 65536  # without multi-credit (SMB 2.0.2) a request carries at most 64 KiB
CREDIT_BYTES = 65536  # with multi-credit a request of n bytes costs ceil(n / 64 KiB) credits
IN_FLIGHT_BYTES = 32 * 1024 * 1024
# The longest one answer may take (a server flushing a block to a slow disk), cut to what the run has left.
ANSWER_TIMEOUT = 120

GCM = (Ciphers.AES_128_GCM, Ciphers.AES_256_GCM)
TRANSFORM_ID = b"\xfdSMB"
TRANSFORM = 52  # SMB2 TRANSFORM_HEADER: id, signature (the GCM tag), nonce, size, reserved, flags, session id
TAG = 16
FRAME = struct.Struct(">I")  # Direct TCP: the packet's length
SEALED = struct.Struct("<12s4xIHHQ")  # the transform header's authenticated part: nonce, size, 0, flags=1, session
WRITE = struct.Struct("<HHIQ16sIIHHI")  # WRITE request up to its data (MS-SMB2 2.2.21)
WRITE_HEAD = 64 + WRITE.size  # the data starts at offset 0x70
READ_ANSWER = struct.Struct("<HBxI")  # READ response: structure size, data offset (from the SMB2 header), length


class Pipeline:
    """Requests on one open file (smbprotocol's Open) sent ahead of their answers, within the server's credits.

    `block` is the size each request should carry: the server's largest
    (`largest`, its max read or write size) up to LARGEST_BLOCK. Up to
    IN_FLIGHT_BYTES go out before the oldest answer is awaited, each answer
    for no longer than the run has left; a server that stops reading or
    answering is left to the session's watchdog, which shuts the socket.
    """

    def __init__(self, fd, largest: int) -> None:
        self.fd = fd
        self.connection = fd.connection
        self.session_id = fd.tree_connect.session.session_id
        self.tree_id = fd.tree_connect.tree_connect_id
        multi = self.connection.supports_multi_credit
        self.block = min(largest, LARGEST_BLOCK if multi else SMB2_BLOCK)
        self.charge = -(-self.block // CREDIT_BYTES) if multi else 1
        self.depth = max(2, IN_FLIGHT_BYTES // self.block)
        # Asked with every request, so the server's grants keep `depth` blocks going.
        self.credits = self.depth * self.charge

    def answers(self, sends: Iterator[Callable[[], tuple | None]]) -> Iterator[tuple]:
        """Call each send (it returns (request, what was asked) or None when done); yield (response, what was asked) in order."""
        pending: deque = deque()
        for send in sends:
            while pending and (len(pending) >= self.depth or not self._covered()):
                yield self._answer(*pending.popleft())
            if not self._covered():
                # Nothing left to wait for: an echo asks for the credits (smbprotocol would refuse to send).
                self.connection.echo(self.session_id, timeout=_seconds(), credit_request=self.credits)
            sent = send()
            if sent is None:
                break
            pending.append(sent)
        while pending:
            yield self._answer(*pending.popleft())

    def _answer(self, request, asked) -> tuple:
        return self.connection.receive(request, timeout=_seconds()), asked

    def _covered(self) -> bool:
        window = self.connection.sequence_window
        return window["high"] - window["low"] >= self.charge

    def read(self, offset: int, length: int) -> tuple:
        message = self.fd.read(offset, length, send=False)[0]
        return self.connection.send(message, self.session_id, self.tree_id, credit_request=self.credits), (offset, length)

    def writes(self, src) -> Iterator[Callable[[], tuple | None]]:
        """One send per block of the open local file `src`, from its start."""
        writer = GcmWriter(self) if GcmWriter.usable(self.fd) else None
        offset = 0
        while True:
            def send(at=offset) -> tuple | None:
                if writer is not None:
                    return writer.send(src, at)
                chunk = src.read(self.block)
                if not chunk:
                    return None
                message = self.fd.write(chunk, at, send=False)[0]
                return self.connection.send(message, self.session_id, self.tree_id, credit_request=self.credits), (at, len(chunk))
            yield send
            offset += self.block


def _seconds() -> int:
    # Whole seconds, rounded up: smbprotocol rounds down, and an answer cut off before the deadline would
    # fail as a timeout of its own; at the deadline the watchdog has shut the socket, which ends the wait.
    return math.ceil(deadline.limit(ANSWER_TIMEOUT))


def read_data(response) -> memoryview:
    """The bytes of a READ response, without copying them."""
    data = memoryview(response["data"].get_value())
    _size, offset, length = READ_ANSWER.unpack_from(data)
    start = offset - 64
    return data[start:start + length]


def written(response) -> int:
    """The count of a WRITE response (MS-SMB2 2.2.22)."""
    return struct.unpack_from("<I", response["data"].get_value(), 4)[0]


def uses_gcm(connection, session) -> bool:
    return bool(session.encrypt_data) and connection.dialect >= Dialects.SMB_3_1_1 and connection.cipher_id in GCM


class GcmWriter:
    """WRITE requests of one pipeline, each encrypted (AES-GCM) and sent as smbprotocol would, with two copies instead of ten."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.connection = pipe.connection
        session = pipe.fd.tree_connect.session
        self.session_id = session.session_id
        self.aead = AESGCM(session.encryption_key)
        self.plain = memoryview(bytearray(WRITE_HEAD + pipe.block))
        self.sealed = memoryview(bytearray(WRITE_HEAD + pipe.block + TAG))
        self.dfs = pipe.fd.tree_connect.is_dfs_share

    @staticmethod
    def usable(fd) -> bool:
        tree = fd.tree_connect
        return uses_gcm(fd.connection, tree.session) and fd.connection.supports_multi_credit

    def send(self, src, offset: int) -> tuple | None:
        connection, pipe = self.connection, self.pipe
        length = src.readinto(self.plain[WRITE_HEAD:])
        if not length:
            return None
        charge = -(-length // CREDIT_BYTES)
        with connection.sequence_lock:
            window = connection.sequence_window
            if window["high"] - window["low"] < charge:
                raise SMBException(f"Request requires {charge} credits but only {window['high'] - window['low']} are available")
            message_id = window["low"]
            window["low"] += charge
        header = SMB2HeaderRequest()
        header["credit_charge"] = charge
        header["command"] = Commands.SMB2_WRITE
        header["credit_request"] = pipe.credits
        header["message_id"] = message_id
        header["session_id"] = self.session_id
        header["tree_id"] = pipe.tree_id
        if self.dfs:
            header["flags"].set_flag(Smb2Flags.SMB2_FLAGS_DFS_OPERATIONS)
        header["data"] = b""
        self.plain[:64] = header.pack()
        self.plain[64:WRITE_HEAD] = WRITE.pack(49, WRITE_HEAD, length, offset, pipe.fd.file_id, 0, 0, 0, 0, 0)
        size = WRITE_HEAD + length
        nonce = os.urandom(12)
        sealed_header = SEALED.pack(nonce, size, 0, 1, self.session_id)
        out = self.sealed[:size + TAG]
        self.aead.encrypt_into(nonce, self.plain[:size], sealed_header, out)
        head = FRAME.pack(TRANSFORM + size) + TRANSFORM_ID + bytes(out[size:]) + sealed_header
        request = Request(header, SMB2WriteRequest, connection, session_id=self.session_id)
        connection.outstanding_requests[message_id] = request
        connection._check_worker_running()  # noqa: SLF001 - raises what ended the receive thread, as smbprotocol's send does
        transport = connection.transport
        with transport._sock_lock:  # noqa: SLF001 - one message at a time on the socket, as smbprotocol's send
            transport._sock.sendall(head)  # noqa: SLF001
            transport._sock.sendall(out[:size])  # noqa: SLF001
        return request, (offset, length)


def decrypt_on_receipt(connection) -> None:
    """From the next packet on, the receive thread of `connection` reads and decrypts (AES-GCM) each packet in one buffer.

    Like smbprotocol's Tcp.recv it returns b"" once the socket is closed and
    raises TimeoutError after `timeout` idle seconds (its thread then sends
    a keep-alive echo).
    """
    transport = connection.transport
    keys: dict[int, AESGCM] = {}
    # One buffer for every packet, only grown (a new 8 MiB buffer per packet cost as much as a copy);
    # what leaves `recv` is a new bytes object, which smbprotocol's thread then slices without copying.
    received = [bytearray(0)]

    def recv(timeout: float):
        frame = bytearray(4)
        timeout = _read(transport, memoryview(frame), timeout)
        if timeout is None:
            return b""
        size = FRAME.unpack(frame)[0]
        if len(received[0]) < size + TAG:
            received[0] = bytearray(size + TAG)
        view = memoryview(received[0])[:size + TAG]
        head = min(TRANSFORM, size)
        if _read(transport, view[:head], timeout) is None:
            return b""
        session_id, = struct.unpack_from("<Q", view, 44) if head == TRANSFORM else (None,)
        session = connection.session_table.get(session_id)
        if view[:4] != TRANSFORM_ID or view[42:44] != b"\x01\x00" or session is None or not uses_gcm(connection, session):
            # Not ours to decrypt: the whole packet to smbprotocol, as its own receive gives it.
            if _read(transport, view[head:size], timeout) is None:
                return b""
            return bytes(view[:size])
        transform = bytes(view[:TRANSFORM])
        # The ciphertext where the header was and its tag after it, as AES-GCM takes them.
        ciphertext = view[:size - TRANSFORM + TAG]
        if _read(transport, ciphertext[:-TAG], timeout) is None:
            return b""
        ciphertext[-TAG:] = transform[4:4 + TAG]
        key = keys.get(session_id)
        if key is None:
            key = keys[session_id] = AESGCM(session.decryption_key)
        return key.decrypt(transform[20:32], ciphertext, transform[20:52])

    transport.recv = recv


def _read(transport, view: memoryview, timeout: float) -> float | None:
    """Fill `view` from the transport's socket, as smbprotocol's Tcp._recv; returns the timeout left, None once closed.

    Raises TimeoutError when nothing came for `timeout` seconds.
    """
    sock = transport._sock  # noqa: SLF001
    offset, end = 0, len(view)
    while offset < end:
        started = time.monotonic()
        with transport._close_lock:  # noqa: SLF001 - the transport's close waits for a receive in progress
            if not transport.connected:
                return None
            ready = select.select([sock], [], [], max(timeout, 1))[0]
            timeout -= time.monotonic() - started
            if not ready:
                raise TimeoutError(f"recv idle for {time.monotonic() - started:.1f}s ({offset}/{end} bytes)")
            try:
                count = sock.recv_into(view[offset:])
            except OSError as exc:
                if exc.errno not in (errno.ESHUTDOWN, errno.ECONNRESET, errno.ECONNABORTED):
                    raise
                count = 0
        if count == 0:
            transport.close()
            return None
        offset += count
    return timeout
