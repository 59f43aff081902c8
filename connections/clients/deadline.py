"""One deadline for everything a run does: each blocking call gets what is left of it, and what cannot see it is cancelled.

The runner sets the run's deadline (its task's timeout, counted from the
claim) for the thread that runs the stages (`applies`); the clients below
ask it, so no client needs it passed through every call:

- `limit(seconds)`: a socket, login or channel timeout, cut to what is left;
- `check(doing)`: raises DeadlinePassed between the steps of a long job;
- `Watchdog(cancel, doing)`: for a call blocked where no timeout reaches it
  — an ODBC query (the SQLite driver ignores the query timeout), a transfer
  to a server that stopped reading — a thread calls `cancel` (the cursor's
  `cancel()`, shutting the sockets down) when the deadline passes, and again
  every second until the call has returned; the call's error is then
  replaced by DeadlinePassed.

Without a deadline (a connection test from a page) these change nothing.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from connections.clients.base import ClientError

logger = logging.getLogger(__name__)

# A timeout is never cut below this: zero would make a socket non-blocking.
SHORTEST = 0.1
# After the deadline the cancel is repeated this often until the blocked call returns.
CANCEL_AGAIN_SECONDS = 1.0


class DeadlinePassed(ClientError):
    """Work stopped because its time ran out; another attempt may fare better."""


@dataclass(frozen=True)
class Deadline:
    at: float  # on the time.monotonic() clock
    limit: str  # what set it, for messages: "the task timeout"

    @classmethod
    def after(cls, seconds: float, limit: str) -> Deadline:
        return cls(time.monotonic() + seconds, limit)

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def stopped(self, doing: str) -> DeadlinePassed:
        return DeadlinePassed(f"{doing} was stopped by {self.limit}.")


_current: ContextVar[Deadline | None] = ContextVar("courier_deadline", default=None)


def current() -> Deadline | None:
    return _current.get()


@contextmanager
def applies(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Within the block (and this thread), `deadline` bounds every call that asks."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def limit(seconds: float | None) -> float | None:
    """`seconds` (None: no limit of its own) cut to what is left of the current deadline."""
    deadline = current()
    if deadline is None:
        return seconds
    left = max(deadline.left(), SHORTEST)
    return left if seconds is None else max(min(seconds, left), SHORTEST)


def check(doing: str) -> None:
    deadline = current()
    if deadline is not None and deadline.passed():
        raise deadline.stopped(doing)


def explained(error: ClientError, doing: str) -> ClientError:
    """An error met once the current deadline has passed is that deadline's: a broken pipe is only how it showed."""
    deadline = current()
    if deadline is None or not deadline.passed() or isinstance(error, DeadlinePassed):
        return error
    return deadline.stopped(doing)


def earliest(*deadlines: Deadline | None) -> Deadline | None:
    found = [d for d in deadlines if d is not None]
    return min(found, key=lambda d: d.at) if found else None


class Watchdog:
    """Calls `cancel` once the deadline passes inside the `with` block, and every second after until the block ends.

    The deadline is the current one, or `own` (a limit of the call itself,
    such as a query timeout the driver ignores) if that comes first. An
    error leaving the block after a cancel becomes DeadlinePassed.
    """

    def __init__(self, cancel: Callable[[], None], doing: str, own: Deadline | None = None) -> None:
        self.cancel = cancel
        self.doing = doing
        self.deadline = earliest(current(), own)
        self.fired = False
        self._done = threading.Event()

    def __enter__(self) -> Watchdog:
        if self.deadline is not None:
            if self.deadline.passed():
                raise self.deadline.stopped(self.doing)
            threading.Thread(target=self._watch, name="courier-watchdog", daemon=True).start()
        return self

    def _watch(self) -> None:
        if self._done.wait(self.deadline.left()):
            return
        while True:
            self.fired = True
            try:
                self.cancel()
            except Exception as exc:  # noqa: BLE001 - cancelling something half closed may fail; try again
                logger.warning("%s: cancelling at the deadline failed: %s", self.doing, exc)
            if self._done.wait(CANCEL_AGAIN_SECONDS):
                return

    def __exit__(self, exc_type, exc, traceback) -> bool:
        self._done.set()
        if self.fired and exc_type is not None and issubclass(exc_type, Exception):
            raise self.deadline.stopped(self.doing) from None
        return False


def shut_socket(sock: socket.socket | None) -> None:
    """Shut a session's socket down from the watchdog's thread: every call blocked on it fails at once.

    The plain socket's shutdown, also under TLS (the TLS layer is not touched
    from this thread), and never the client's own close, which may wait for
    a lock the blocked call holds. A socket already closed is left as it is.
    """
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class WatchedSession:
    """Mixed into a client whose session the deadline must be able to end (before its client base class).

    Entering the session starts a Watchdog that calls `shut()` once the
    current deadline passes: a transfer blocked on a server that stopped
    reading then fails at once, and its error becomes DeadlinePassed.
    """

    label: str
    _watchdog: Watchdog | None = None

    def shut(self) -> None:
        """Wake every call blocked on this session; called from the watchdog's thread."""
        raise NotImplementedError

    def __enter__(self):
        entered = super().__enter__()
        self._watchdog = Watchdog(self.shut, f"The session with {self.label}")
        try:
            self._watchdog.__enter__()
        except BaseException:
            super().__exit__(None, None, None)
            raise
        return entered

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if self._watchdog is not None:
                self._watchdog.__exit__(exc_type, exc, traceback)
        finally:
            self._watchdog = None
            super().__exit__(exc_type, exc, traceback)
