"""Settings for the embedded-default cluster tests: SQLite and django-q2's ORM broker, as `make run` starts them.

Only the subprocesses that tests/test_cluster_embedded.py starts use this
module (`manage.py qcluster`, `migrate`, tests/embedded_helper.py); the
pytest process reads the site's SQLite file directly. COURIER_TEST_VAR_DIR
names the site's folder: its database, work folders and stored files, so
that test sessions side by side never share a queue.
"""

import os

os.environ["COURIER_ENV_FILE"] = "/dev/null"
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("COURIER_SECRET_KEYS", "pJ4z6cQwQ3cHq6Lr8mXo2n1d4x5v7b9k0s2u4w6y8A0=")
os.environ["COURIER_VAR_DIR"] = os.environ["COURIER_TEST_VAR_DIR"]
# The embedded default: no DATABASE_URL (SQLite in the var folder), no REDIS_URL (the ORM broker).
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("EMAIL_URL", "consolemail://")

from etlsite.settings import *  # noqa: E402,F403
from tests.cluster_support import CLUSTER_LOGGING  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A run is silent after 4 s without a heartbeat (every second): the reaper's patrols come every 1.3 s.
COURIER_HEARTBEAT_SECONDS = 1
COURIER_REAP_AFTER_SECONDS = 4
# Each worker asks django-q2's scheduler every second (production: 5 s), beside the sentinel's 30 s pass: the
# firing test shows that many writers at once neither fire a fire time twice nor meet "database is locked".
COURIER_SCHEDULER_POLL_SECONDS = 1
# The cluster's log, with process ids: the tests read it.
LOGGING = CLUSTER_LOGGING
