"""django-q2's scheduler, asked every few seconds by each worker: a fire time waits seconds, not up to half a minute.

django-q2 fires due schedules only from its sentinel's guard loop, once every
30 s of it (django_q/cluster.py `Sentinel.guard`; not a setting): a fire
time just after a pass waited for the next one, and at the worst alignment
of that cycle 200 every-minute projects started 37–38 s late (p95,
docs/benchmarks.md). So every worker process of every cluster also calls
django-q2's own `django_q.scheduler.scheduler()` from a side thread, every
COURIER_SCHEDULER_POLL_SECONDS (0: off), started on django-q2's post_spawn
signal like the reaper (runs/reaper.py). django-q2 still does all the
scheduling; it is only asked more often, and its sentinel's pass still comes.

A poll first reads whether any schedule is due, and calls the scheduler only
then: the scheduler's transaction takes SQLite's one write lock (below) even
when there is nothing to fire.

Several callers at once fire a due schedule once. `scheduler()` reads the due
rows and marks each fired (repeats 0, or its next time) in one transaction:

- on PostgreSQL it reads them `select_for_update`: a second caller waits for
  the first one's commit, then re-reads each row, no longer due, and skips it;
- on SQLite every transaction begins IMMEDIATE (etlsite/settings.py): the
  second caller waits for the write lock, within the 30 s busy timeout, and
  only then reads, after the first one's commit.

Should a pass fail after it queued firings (django-q2 logs it and rolls back;
on PostgreSQL two passes locking rows of one fire time in a different order
can deadlock), Redis keeps what it queued and the rows fire again: a second
firing of one fire time starts nothing (runs/firing.py, the constraint
`run_once_per_fire_time`). The ORM broker queues inside the transaction.

The poll follows its own setting only, not Q_CLUSTER's `scheduler` switch of
the sentinel's pass (Courier always leaves that on): tests/test_cluster.py
switches the sentinel's pass off to show that the polls alone fire every
schedule, once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler

from runs.ticker import Ticker


def poll_every() -> float:
    return settings.COURIER_SCHEDULER_POLL_SECONDS


def anything_due() -> bool:
    """Whether django-q2's scheduler would find a schedule to fire (its own filter, without the lock)."""
    return Schedule.objects.exclude(repeats=0).filter(next_run__lt=timezone.now()).exists()


class _Poll:
    """This process's poll thread and its broker (one per worker process)."""

    ticker: Ticker | None = None
    broker: Broker | None = None


def poll() -> bool:
    """One poll: django-q2's scheduler if a schedule is due; returns whether it was called."""
    # This thread lives as long as its worker: a connection a database restart broke is replaced, not kept.
    close_old_connections()
    if not anything_due():
        return False
    if _Poll.broker is None:
        # One broker (a Redis connection) for the thread's life, not one per call as scheduler() would make.
        _Poll.broker = get_broker()
    scheduler(broker=_Poll.broker)
    return True


def start_in_worker(**_signal) -> None:
    """django-q2's post_spawn signal, sent in each new worker process: start its poll thread, unless switched off."""
    if _Poll.ticker is None and poll_every() > 0:
        _Poll.ticker = Ticker(poll_every(), poll, name="courier-scheduler-poll").start()
