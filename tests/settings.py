"""Test settings: the real settings module with a fixed key, fast hashing and private folders."""

import atexit
import os
import shutil
import tempfile

_TMP = tempfile.mkdtemp(prefix="courier-test-")
_CREATOR = os.getpid()


@atexit.register
def _remove_tmp() -> None:
    # Forked workers inherit this handler: only the process that made the folder removes it.
    if os.getpid() == _CREATOR:
        shutil.rmtree(_TMP, ignore_errors=True)

os.environ.setdefault("COURIER_ENV_FILE", "/dev/null")  # a developer's .env must not leak into tests
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# A fixed Fernet key, for tests only.
os.environ.setdefault("COURIER_SECRET_KEYS", "pJ4z6cQwQ3cHq6Lr8mXo2n1d4x5v7b9k0s2u4w6y8A0=")
os.environ["COURIER_VAR_DIR"] = _TMP
os.makedirs(os.path.join(_TMP, "static"))  # STATIC_ROOT: WhiteNoise warns when it is missing
os.environ.setdefault("EMAIL_URL", "consolemail://")

from etlsite.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# django-q2 workers are separate processes: the test database must be a file they can open.
DATABASES["default"].setdefault("TEST", {})  # noqa: F405
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = os.path.join(_TMP, "test-db.sqlite3")
COURIER_ROWCOUNT_SECONDS = 0.5
LOGGING = {"version": 1, "disable_existing_loggers": False}
