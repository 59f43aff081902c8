"""Settings for the multi-machine tests: PostgreSQL as Django's database, Redis as django-q2's broker.

Only the subprocesses that tests/test_cluster.py starts use this module (two
`manage.py qcluster` processes standing in for two machines, and short helper
commands); the pytest process itself stays on tests.settings. The test names
its throwaway database, its cluster name (which names its Redis keys, so
that test sessions running side by side never share a queue) and a shared
folder in the environment: COURIER_TEST_PG_DB, COURIER_TEST_Q_NAME and
COURIER_TEST_VAR_DIR.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("COURIER_SECRET_KEYS", "pJ4z6cQwQ3cHq6Lr8mXo2n1d4x5v7b9k0s2u4w6y8A0=")
os.environ["COURIER_VAR_DIR"] = os.environ["COURIER_TEST_VAR_DIR"]
os.makedirs(os.path.join(os.environ["COURIER_VAR_DIR"], "static"), exist_ok=True)  # STATIC_ROOT: WhiteNoise warns when it is missing
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{os.environ['COURIER_TEST_PG_DB']}"
os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/0"
os.environ.setdefault("EMAIL_URL", "consolemail://")

from etlsite.settings import *  # noqa: E402,F403
from tests.cluster_support import CLUSTER_LOGGING  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# django-q2 runs its scheduler when its guard loop has counted 30 s; with a
# 30 s cycle that is on the loop's first turn, right after a cluster starts.
Q_CLUSTER.update({"name": os.environ["COURIER_TEST_Q_NAME"], "workers": 2, "timeout": 90, "retry": 300, "guard_cycle": 30, "save_limit": 0})  # noqa: F405
# COURIER_TEST_SENTINEL_SCHEDULER=off: the sentinel's own 30 s pass is off, so only the
# workers' polls (runs/schedulerpoll.py, which follow COURIER_SCHEDULER_POLL_SECONDS alone) fire schedules.
if os.environ.get("COURIER_TEST_SENTINEL_SCHEDULER") == "off":
    Q_CLUSTER["scheduler"] = False  # noqa: F405
# A run is silent after 4 s without a heartbeat (every second), so the reaper test is quick.
COURIER_HEARTBEAT_SECONDS = 1
COURIER_REAP_AFTER_SECONDS = 4
# The scheduler passes every 30 s; a fire time 35 s late was missed (the test of missed runs stays under a minute).
COURIER_MISSED_AFTER_SECONDS = 35
# The cluster's log, with process ids: the tests read it.
LOGGING = CLUSTER_LOGGING
