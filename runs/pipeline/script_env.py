"""The environment a processing script (and pip) runs with (SPEC §3.7).

The worker's variables pass through, except Courier's own secrets: the
Django key, the Fernet keys for stored secrets, the database/broker/mail URLs
(which carry passwords), the pip options (an index URL may hold a login), any
name an administrator lists in COURIER_SCRIPT_ENV_EXCLUDE, and any variable
whose value carries one of those secrets under another name. On top come
COURIER_TASK, COURIER_PROJECT and COURIER_CONNECTION (JSON) and one variable
per parameter.

COURIER_CONNECTION deliberately includes the source connection's
credentials (password, key, token, ODBC string): scripts are written by
administrators to work with that system. They are masked in the run log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings

from connections.kinds import KINDS
from connections.masking import courier_secrets
from connections.models import Connection
from projects.parameters import env_vars
from runs.pipeline.context import RunContext
from runs.procs import RUN_MARKER

ALWAYS_HIDDEN = ("SECRET_KEY", "COURIER_SECRET_KEYS", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "COURIER_PIP_OPTIONS")
# They would point the script's interpreter at the worker's own packages.
PYTHON_OVERRIDES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
# Shorter values are too likely to occur by chance inside an unrelated variable.
MIN_CONTAINED_SECRET = 8


def _carries_secret(value: str, secrets: list[str]) -> bool:
    return any(value == s or (len(s) >= MIN_CONTAINED_SECRET and s in value) for s in secrets)


def worker_environment() -> dict[str, str]:
    """The worker's variables without Courier's secrets (for scripts and for pip)."""
    hidden = {*ALWAYS_HIDDEN, *PYTHON_OVERRIDES, *settings.COURIER_SCRIPT_ENV_EXCLUDE}
    secrets = courier_secrets()
    return {k: v for k, v in os.environ.items() if k not in hidden and not _carries_secret(v, secrets)}


def connection_json(conn: Connection | None) -> dict | None:
    if conn is None:
        return None
    data = {"id": conn.pk, "name": conn.name, "organization": conn.organization.name, "kind": conn.kind}
    for name in KINDS[conn.kind].fields:
        data[name] = getattr(conn, name)
    data["port"] = conn.effective_port
    return data


def task_json(ctx: RunContext) -> dict:
    task, run = ctx.task, ctx.run
    return {
        "id": task.pk, "name": task.name, "project_id": task.project_id, "project": task.project.name,
        "run_id": run.pk, "attempt": run.attempt, "trigger": run.trigger,
        "intended_at": ctx.at.isoformat(), "timeout_minutes": task.timeout_minutes,
        "source_kind": task.source_kind, "workdir": str(ctx.workdir),
    }


def project_json(ctx: RunContext) -> dict:
    project, owner = ctx.task.project, ctx.task.project.owner
    return {
        "id": project.pk, "name": project.name, "timezone": project.timezone, "sequence": project.sequence,
        "owner": {"username": owner.get_username(), "email": owner.email, "name": owner.get_full_name()},
        "run_id": ctx.run.pk, "attempt": ctx.run.attempt,
    }


def script_environment(ctx: RunContext, venv_bin: Path) -> dict[str, str]:
    """Raises ParameterError when two parameter keys map to the same variable."""
    env = worker_environment()
    env.update(env_vars(ctx.params))
    env.update({
        "PATH": os.pathsep.join([str(venv_bin), env.get("PATH", os.defpath)]),
        "VIRTUAL_ENV": str(venv_bin.parent),
        # Lines reach the log as they are printed, not when a pipe buffer fills.
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
        "COURIER_TASK": json.dumps(task_json(ctx)),
        "COURIER_PROJECT": json.dumps(project_json(ctx)),
        "COURIER_CONNECTION": json.dumps(connection_json(ctx.task.source_connection)),
        # Lets the reaper find what the script left running should its worker die (runs/procs.py).
        RUN_MARKER: str(ctx.run.pk),
    })
    return env
