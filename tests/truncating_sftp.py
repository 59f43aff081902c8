"""An SFTP subsystem for sshd that silently loses data: a test server that truncates uploads.

sshd runs it instead of its own sftp-server (``Subsystem sftp python3 THIS
/usr/lib/openssh/sftp-server LIMIT``). It passes every SFTP packet between
the client and the real sftp-server, except the data of write requests past
byte LIMIT of a file: it answers those "OK" itself and drops them. The
client is told every write succeeded, yet the file on the server ends at
LIMIT bytes — what a full quota or a broken proxy does to a partner's server.

Standard library only: sshd starts it with the system's python3 as the login user.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading

SSH_FXP_WRITE = 6
SSH_FXP_STATUS = 101
SSH_FX_OK = 0


def read_packet(stream) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (length,) = struct.unpack(">I", header)
    body = stream.read(length)
    return body if len(body) == length else None


def write_packet(stream, body: bytes, lock: threading.Lock) -> None:
    with lock:
        stream.write(struct.pack(">I", len(body)) + body)
        stream.flush()


def ok_status(request_id: int) -> bytes:
    return struct.pack(">BIIII", SSH_FXP_STATUS, request_id, SSH_FX_OK, 0, 0)


def truncated_write(body: bytes, limit: int) -> tuple[bytes | None, int]:
    """The write request cut at `limit` (None: drop it all), and its request id."""
    request_id, handle_length = struct.unpack(">II", body[1:9])
    handle_end = 9 + handle_length
    (offset,) = struct.unpack(">Q", body[handle_end:handle_end + 8])
    data = body[handle_end + 12:]
    if offset >= limit:
        return None, request_id
    if offset + len(data) <= limit:
        return body, request_id
    kept = data[: limit - offset]
    return body[:handle_end + 8] + struct.pack(">I", len(kept)) + kept, request_id


def main() -> None:
    server, limit = sys.argv[1], int(sys.argv[2])
    real = subprocess.Popen([server], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, lock = sys.stdout.buffer, threading.Lock()

    def answers() -> None:
        while (body := read_packet(real.stdout)) is not None:
            write_packet(out, body, lock)

    threading.Thread(target=answers, daemon=True).start()
    while (body := read_packet(sys.stdin.buffer)) is not None:
        if body[0] == SSH_FXP_WRITE:
            body, request_id = truncated_write(body, limit)
            if body is None:
                write_packet(out, ok_status(request_id), lock)
                continue
        real.stdin.write(struct.pack(">I", len(body)) + body)
        real.stdin.flush()
    real.stdin.close()
    real.wait()


if __name__ == "__main__":
    main()
