"""Database work that met a lock is tried again instead of being lost.

On the embedded SQLite database every transaction waits up to its busy
timeout for the write lock (etlsite/settings.py); a lock held longer than
that, or PostgreSQL's deadlock and serialization failures, still end in an
OperationalError. Work that must not be lost to such a moment — a schedule's
firing above all — goes through `when_locked`, which pauses and tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_MESSAGES = ("database is locked", "database table is locked", "deadlock detected", "could not serialize access")
# Pauses between attempts, in seconds; each attempt already waited up to the busy timeout.
PAUSES = (1.0, 2.0, 4.0, 8.0)


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and any(text in str(exc).lower() for text in LOCK_MESSAGES)


def when_locked(work: Callable[[], T], what: str, pauses: tuple[float, ...] = PAUSES) -> T:
    """`work()`, tried again after each pause while it fails on a lock; the last failure is raised.

    Inside a caller's transaction nothing is tried again: that transaction is
    the caller's to repeat.
    """
    for pause in pauses:
        try:
            return work()
        except OperationalError as exc:
            if not is_lock_conflict(exc) or connection.in_atomic_block:
                raise
            logger.warning("%s met a database lock (%s); trying again in %.0f s.", what, exc, pause)
        time.sleep(pause)
    return work()
