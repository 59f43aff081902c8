"""Side threads that do something every few seconds while a run works: the heartbeat, the live row count.

While a run works, its heartbeat writes `heartbeat_at` every
COURIER_HEARTBEAT_SECONDS, also while the main thread is blocked in a driver
call; the reaper (runs/reaper.py) takes a run whose heartbeat went silent
for a dead worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections
from django.db.models import QuerySet
from django.utils import timezone

from runs.models import Run, RunStatus

logger = logging.getLogger(__name__)


class Ticker:
    """Calls `tick()` every `every` seconds from a thread of its own until stopped.

    The thread writes through its own database connection, which cannot see
    rows of an open transaction (a test, or a caller's atomic block): there
    it does not start, and `running` tells the caller to fall back.
    """

    def __init__(self, every: float, tick: Callable[[], None], name: str) -> None:
        self.every = every
        self.tick = tick
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> Ticker:
        if not connection.in_atomic_block:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - a database hiccup must not end the ticking for good
                    logger.exception("%s: one tick failed", self.name)
        finally:
            connections.close_all()  # this thread's own connections only


def heartbeat_every() -> float:
    return settings.COURIER_HEARTBEAT_SECONDS


def reap_after() -> timedelta:
    """How long a heartbeat may be silent before its worker counts as lost (runs/reaper.py, runs/resend.py)."""
    return timedelta(seconds=settings.COURIER_REAP_AFTER_SECONDS)


def queue_lost_after() -> timedelta:
    """How long work may wait in the queue, no worker on it, before its message counts as lost."""
    return timedelta(seconds=settings.COURIER_QUEUE_LOST_AFTER_SECONDS)


class Heartbeat:
    """Writes a sign of life (`heartbeat_at`) on rows still at work, from a side thread until stopped.

    `rows`: a run's row while it runs, or the deliveries of a resend while they are sent.
    """

    def __init__(self, rows: QuerySet, name: str) -> None:
        self.rows = rows
        self._ticker = Ticker(heartbeat_every(), self._beat, name=name)

    @classmethod
    def start(cls, rows: QuerySet, name: str) -> Heartbeat:
        beat = cls(rows, name)
        beat._ticker.start()
        return beat

    @classmethod
    def of_run(cls, run_id: int) -> Heartbeat:
        return cls.start(Run.objects.filter(pk=run_id, status=RunStatus.RUNNING), f"heartbeat-run-{run_id}")

    def _beat(self) -> None:
        self.rows.update(heartbeat_at=timezone.now())

    def stop(self) -> None:
        self._ticker.stop()
