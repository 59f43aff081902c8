"""Courier settings, read from the environment (and an optional `.env`).

With nothing set, Courier runs on one machine: SQLite, django-q2's ORM broker
on the same database, files in a local folder. DATABASE_URL (PostgreSQL) and
REDIS_URL switch to the multi-machine set-up.
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(os.environ.get("COURIER_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

# Courier's own files (database, stored files, run folders, environments) are
# readable by its account only (SPEC §8.2): every process that loads these
# settings (web server, workers, commands) creates files 0600 and folders 0700
# from here on, and the scripts it starts inherit that. Files delivered to a
# local-folder destination are not Courier's: they get the modes the umask the
# service was started with gives them (or COURIER_FOLDER_UMASK). Processes
# started afresh by this one inherit 0o077, so the first one passes its
# starting umask on through the environment.
_umask_at_start = os.umask(0o077)
_folder_umask = env.str("COURIER_FOLDER_UMASK", default=f"{_umask_at_start:03o}")
if not re.fullmatch(r"0?[0-7]{3}", _folder_umask):
    raise ImproperlyConfigured(f"COURIER_FOLDER_UMASK must be an octal umask such as 022, not {_folder_umask!r}.")
COURIER_FOLDER_UMASK = int(_folder_umask, 8)
os.environ["COURIER_FOLDER_UMASK"] = f"{COURIER_FOLDER_UMASK:03o}"

VAR_DIR = Path(env.str("COURIER_VAR_DIR", default=str(BASE_DIR / "var")))
# The embedded default keeps its database, files and work folders here.
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is not set: put it in the environment or in .env (`make run` writes one).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A refused form says why in the admin's look, as every refused page does.
CSRF_FAILURE_VIEW = "etlsite.errors.csrf_failure"

# Secrets of connections and sensitive parameters are encrypted with these
# Fernet keys, kept apart from SECRET_KEY so that either can be rotated alone.
# The first key encrypts; every key decrypts (rotation: prepend a new key, run
# `manage.py rotate_secrets`, then drop the old one).
COURIER_SECRET_KEYS = env.list("COURIER_SECRET_KEYS", default=[])
if not COURIER_SECRET_KEYS:
    raise ImproperlyConfigured(
        "COURIER_SECRET_KEYS is not set: give one or more comma-separated Fernet keys "
        "(`make run` generates a local one into .env)."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "django_filters",
    "django_tables2",
    "axes",
    "connections",
    "projects",
    "tasks",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's styles, Courier's scripts) with DEBUG off too, from STATIC_ROOT
    # (`make run` collects them there).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "etlsite.urls"
WSGI_APPLICATION = "etlsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'courier.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the cluster's processes and the commands share one SQLite
    # file. WAL lets readers go on while one writes; every transaction takes the
    # write lock when it begins (IMMEDIATE), so it waits its turn for up to the
    # busy timeout instead of failing with "database is locked" when a read turns
    # into a write; and that turn makes a transaction's check-then-insert atomic,
    # which select_for_update cannot do on SQLite.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes): after this many failed logins the same
# username from the same address is refused for a while, even with the right
# password; other users, and the same user from elsewhere, can still log in.
# The address is the connection's own (REMOTE_ADDR): X-Forwarded-For is not
# trusted, or one client could pose as many addresses. An operator lifts a
# lock-out early with `manage.py axes_reset_username NAME`. Only failures are
# recorded (no log of every login: the admin's own history covers changes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("COURIER_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("COURIER_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "courier/locked_out.html"
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# No start-up banner on every manage.py command; lock-outs are still logged.
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One way to write a moment on every page, the admin's included: 2026-11-29 11:20 UTC.
FORMAT_MODULE_PATH = ["etlsite.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The pages' own scripts and the vendored code editor (static/vendor/), served from the project, never a CDN.
STATICFILES_DIRS = [BASE_DIR / "static"]

# Produced files are kept in Courier's file storage (a local folder by
# default); any Django storage backend can be configured instead.
COURIER_STORAGE_DIR = Path(env.str("COURIER_STORAGE_DIR", default=str(VAR_DIR / "storage")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(COURIER_STORAGE_DIR)},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Stored files and their folders are Courier's alone (Django's default would be 0644).
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# Each run works in a private folder below this one.
COURIER_WORK_DIR = Path(env.str("COURIER_WORK_DIR", default=str(VAR_DIR / "work")))
# Processing scripts: one cached virtual environment per requirement set
# below this folder; extra pip options (shell syntax), e.g. an internal mirror:
# "--index-url https://pypi.internal/simple" or "--no-index --find-links /srv/wheels";
# and extra worker variables scripts must not see (SECRET_KEY, COURIER_SECRET_KEYS,
# DATABASE_URL, REDIS_URL and EMAIL_URL are always withheld).
COURIER_VENV_DIR = Path(env.str("COURIER_VENV_DIR", default=str(VAR_DIR / "venvs")))
COURIER_PIP_OPTIONS = shlex.split(env.str("COURIER_PIP_OPTIONS", default=""))
COURIER_SCRIPT_ENV_EXCLUDE = env.list("COURIER_SCRIPT_ENV_EXCLUDE", default=[])
# Processing scripts run in a bubblewrap sandbox (SPEC §8.1); "off" runs them with
# everything the worker may read — Courier's database and keys included. Unsafe.
COURIER_SCRIPT_SANDBOX = env.str("COURIER_SCRIPT_SANDBOX", default="on").strip().lower()
if COURIER_SCRIPT_SANDBOX not in ("on", "off"):
    raise ImproperlyConfigured(f"COURIER_SCRIPT_SANDBOX must be on or off, not {COURIER_SCRIPT_SANDBOX!r}.")
# Remote code URLs (web, GitLab, script packages) may not reach loopback, link-local or
# unspecified addresses (this machine's own services, cloud metadata) unless this is set.
COURIER_ALLOW_LOCAL_URLS = env.bool("COURIER_ALLOW_LOCAL_URLS", default=False)

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="courier@localhost")
# The port `make run` (scripts/serve.sh) serves on; `make run PORT=8123` sets it for one start.
COURIER_PORT = env.int("COURIER_PORT", default=8000)
COURIER_BASE_URL = env.str("COURIER_BASE_URL", default=f"http://127.0.0.1:{COURIER_PORT}")
# A mail server that never answers must not hold a worker (SPEC §11: every blocking call has a limit).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Success mails: total bytes of attached files, and characters of cell text in an embedded table.
COURIER_EMAIL_ATTACH_LIMIT = env.int("COURIER_EMAIL_ATTACH_LIMIT", default=10 * 1024 * 1024)
COURIER_EMAIL_EMBED_LIMIT = env.int("COURIER_EMAIL_EMBED_LIMIT", default=100_000)
# `manage.py prune_history` defaults: runs and stored files older than this many
# days are deleted, but the newest N runs and files of every task are always kept.
COURIER_RETENTION_DAYS = env.int("COURIER_RETENTION_DAYS", default=90)
COURIER_RETENTION_KEEP = env.int("COURIER_RETENTION_KEEP", default=10)

# Rows fetched from the driver per round trip, and how often the live row
# count is written to the run log.
COURIER_FETCH_BATCH = env.int("COURIER_FETCH_BATCH", default=5000)
COURIER_ROWCOUNT_SECONDS = env.float("COURIER_ROWCOUNT_SECONDS", default=2.0)

# A running run writes its heartbeat this often, from a side thread (runs/ticker.py); the
# reaper fails a running run whose heartbeat is older than COURIER_REAP_AFTER_SECONDS
# ("worker lost") and gives it the follow-ups of any failure (runs/reaper.py, SPEC §11).
# The reaper, a thread of every worker, looks every third of that (at most 30 s): with
# these defaults a lost run is failed, and its retry planned, within 100 s.
COURIER_HEARTBEAT_SECONDS = env.float("COURIER_HEARTBEAT_SECONDS", default=15.0)
COURIER_REAP_AFTER_SECONDS = env.float("COURIER_REAP_AFTER_SECONDS", default=75.0)
if COURIER_HEARTBEAT_SECONDS <= 0:
    raise ImproperlyConfigured(f"COURIER_HEARTBEAT_SECONDS must be more than 0, not {COURIER_HEARTBEAT_SECONDS:g}.")
if COURIER_REAP_AFTER_SECONDS < 2 * COURIER_HEARTBEAT_SECONDS:
    # One late beat (a busy database) must not get a live run failed.
    raise ImproperlyConfigured(
        f"COURIER_REAP_AFTER_SECONDS ({COURIER_REAP_AFTER_SECONDS:g}) must be at least twice "
        f"COURIER_HEARTBEAT_SECONDS ({COURIER_HEARTBEAT_SECONDS:g})."
    )

# django-q2 fires due schedules only every 30 s of its sentinel's loop; every worker
# process also asks django-q2's scheduler this often, from a side thread, so a fire
# time waits seconds rather than up to half a minute (runs/schedulerpoll.py). 0: off.
COURIER_SCHEDULER_POLL_SECONDS = env.float("COURIER_SCHEDULER_POLL_SECONDS", default=5.0)
if COURIER_SCHEDULER_POLL_SECONDS < 0:
    raise ImproperlyConfigured(f"COURIER_SCHEDULER_POLL_SECONDS must be 0 (off) or more, not {COURIER_SCHEDULER_POLL_SECONDS:g}.")

# A queued run no worker took within COURIER_QUEUE_LOST_AFTER_SECONDS (its queue message
# lost: a Redis restart, a broker flush) is queued again once by the reaper; still not
# taken after as long again, it fails "lost in the queue" and its retry policy applies.
COURIER_QUEUE_LOST_AFTER_SECONDS = env.float("COURIER_QUEUE_LOST_AFTER_SECONDS", default=600.0)
if COURIER_QUEUE_LOST_AFTER_SECONDS < 60:
    # A run behind busy workers must have time to be taken before it counts as lost.
    raise ImproperlyConfigured(f"COURIER_QUEUE_LOST_AFTER_SECONDS must be at least 60, not {COURIER_QUEUE_LOST_AFTER_SECONDS:g}.")

# The hour (0-23, site time zone) from which the watch sends each owner the daily digest of
# the day before (runs/digest.py); GPG key expiry warnings go out at any hour (runs/keywatch.py).
COURIER_DIGEST_HOUR = env.int("COURIER_DIGEST_HOUR", default=7)
if not 0 <= COURIER_DIGEST_HOUR <= 23:
    raise ImproperlyConfigured(f"COURIER_DIGEST_HOUR must be an hour from 0 to 23, not {COURIER_DIGEST_HOUR}.")

# A task's timeout is counted in minutes of this many seconds (60; tests shorten it).
COURIER_TIMEOUT_MINUTE_SECONDS = env.float("COURIER_TIMEOUT_MINUTE_SECONDS", default=60.0)

# The longest a run may take; django-q2's own limits are derived from it so
# that the broker never redelivers a run that is still working (SPEC §11).
# A fire time the scheduler fired more than this late was missed: it was down (runs/catchup.py).
# The scheduler looks every 30 s, so anything much above that is safe.
COURIER_MISSED_AFTER_SECONDS = env.int("COURIER_MISSED_AFTER_SECONDS", default=120)
if COURIER_MISSED_AFTER_SECONDS < 35:
    raise ImproperlyConfigured("COURIER_MISSED_AFTER_SECONDS must be at least 35: the scheduler looks only every 30 seconds.")
COURIER_MAX_RUN_MINUTES = env.int("COURIER_MAX_RUN_MINUTES", default=360)
_q_timeout = COURIER_MAX_RUN_MINUTES * 60 + 120
# Script environments (COURIER_VENV_DIR) no run used for this many days are removed by
# `manage.py prune_history` (runs/venvs.py). A run marks its environment used when it starts,
# so the bound must be longer than any run: then an environment in use is never that old.
COURIER_VENV_KEEP_DAYS = env.int("COURIER_VENV_KEEP_DAYS", default=30)
if COURIER_VENV_KEEP_DAYS * 24 * 60 <= COURIER_MAX_RUN_MINUTES:
    raise ImproperlyConfigured(
        f"COURIER_VENV_KEEP_DAYS ({COURIER_VENV_KEEP_DAYS}) must be longer than the longest run, "
        f"COURIER_MAX_RUN_MINUTES ({COURIER_MAX_RUN_MINUTES} min)."
    )
Q_CLUSTER = {
    "name": "courier",
    "workers": env.int("COURIER_WORKERS", default=2),
    "timeout": _q_timeout,
    "retry": _q_timeout + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    # Successful tasks are not kept: Courier's runs are the record. With a
    # positive limit django-q2 loads and locks every kept success on each
    # result it saves, which cut the workers' throughput by a third
    # (bench/scheduler.py, docs/benchmarks.md). Failures are still kept.
    "save_limit": -1,
    "label": "Queue internals",  # the admin heading of django-q2's own tables (superusers only)
    "time_zone": "UTC",
}
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
