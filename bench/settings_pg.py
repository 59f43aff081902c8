"""Benchmark settings for several machines: tests.settings_pg (PostgreSQL + Redis) with production timings.

The environment names the database, queue and folder as for tests.settings_pg,
COURIER_BENCH_WORKERS the worker processes of each qcluster and
COURIER_BENCH_SAVE_LIMIT django-q2's save_limit (to compare with production's).
"""

import os

from tests.settings_pg import *  # noqa: F403

PRODUCTION_SAVE_LIMIT = -1  # etlsite/settings.py

# The test module shortens django-q2's guard cycle, keeps every result and
# makes the reaper impatient (for its own tests): production's values here.
Q_CLUSTER.update({  # noqa: F405
    "workers": int(os.environ.get("COURIER_BENCH_WORKERS", "1")),
    "guard_cycle": 0.5,
    "save_limit": int(os.environ.get("COURIER_BENCH_SAVE_LIMIT", str(PRODUCTION_SAVE_LIMIT))),
})
COURIER_HEARTBEAT_SECONDS = 15
COURIER_REAP_AFTER_SECONDS = 150
COURIER_ROWCOUNT_SECONDS = 2.0
