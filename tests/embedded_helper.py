"""Steps of the embedded-default cluster tests, run as `python -m tests.embedded_helper STEP ARGS…`.

They run in their own process under tests.settings_embedded, as another
process of that site would, and print one JSON object.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files import File  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.models import Schedule  # noqa: E402

from projects import scheduling  # noqa: E402
from runs import services  # noqa: E402
from runs.models import Run, RunFile, RunStatus, Trigger  # noqa: E402
from tasks.models import CodeLocation, CodeRole, Task  # noqa: E402
from tests import factories  # noqa: E402

# A processing script that starts a child carrying `marker` in its command line, then waits for it.
LONG_SCRIPT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({seconds})', '{marker}'])\n"
    "print('busy', flush=True)\n"
    "child.wait()\n"
)
QUICK_SCRIPT = "print('done', flush=True)\n"


def script_task(name: str, script: str, **fields) -> Task:
    task = Task.objects.create(project=factories.project(name), name=name, source_kind="python", **fields)
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text=script)
    return task


def busy_runs(marker: str, *spans: str) -> dict:
    """One task per span of seconds, each a script that works that long with a child marked `marker-<n>`; all queued."""
    runs = []
    for number, seconds in enumerate(spans):
        script = LONG_SCRIPT.format(seconds=int(seconds), marker=f"{marker}-{number}")
        task = script_task(f"busy-{number}", script, retry_max=1, retry_delay_minutes=0)
        runs.append({"task": task.pk, "run": services.run_now(task).pk, "marker": f"{marker}-{number}"})
    return {"runs": runs}


def make_quick(task_id: str) -> dict:
    """The task's next attempt need not wait."""
    CodeLocation.objects.filter(task_id=int(task_id), role=CodeRole.PROCESSING).update(text=QUICK_SCRIPT)
    return {"task": int(task_id)}


@transaction.atomic
def every_minute(count: str, odbc: str) -> dict:
    """`count` projects on a cron trigger every minute, one SQLite query task each; returns their first fire time."""
    conn = factories.connection("database", name="minutely-db", dialect="sqlite", odbc=odbc)
    for number in range(int(count)):
        project = factories.project(f"minutely-{number:02d}", cron="* * * * *", timezone="UTC")
        factories.query_task(project, conn, "select 1 as n", name="t")
    first = Schedule.objects.filter(name__startswith=scheduling.PROJECT_PREFIX).order_by("next_run").first()
    return {"first": first.next_run.isoformat()}


def stored_file(megabytes: str, outbox: str) -> dict:
    """A finished run whose stored file holds `megabytes` MiB of random bytes, a task delivering to the folder
    `outbox`, and a superuser "resender" (password "resender-pass-1") to resend it from the page."""
    get_user_model().objects.create_superuser("resender", "resender@example.test", "resender-pass-1")
    task = factories.query_task(factories.project("Big"), factories.connection("database", name="big-db", dialect="sqlite", odbc="Driver=SQLite3;Database=:memory:"),
                                "select 1 as n", name="big")
    factories.destination(task, factories.connection("folder", name="outbox", folder=outbox))
    run = Run.objects.create(task=task, status=RunStatus.SUCCEEDED, trigger=Trigger.MANUAL,
                             intended_at=timezone.now(), due_at=timezone.now())
    digest, md5, path = hashlib.sha256(), hashlib.md5(), os.path.join(outbox, "..", "big.bin")
    with open(path, "wb") as out:
        for _ in range(int(megabytes)):
            block = os.urandom(1 << 20)
            digest.update(block), md5.update(block), out.write(block)
    record = RunFile(run=run, name="big.bin", size=int(megabytes) << 20, rows=None, md5=md5.hexdigest(), sha256=digest.hexdigest())
    with open(path, "rb") as source:
        record.stored.save("big.bin", File(source), save=True)
    os.unlink(path)
    return {"task": task.pk, "file": record.pk, "sha256": record.sha256}


STEPS = {fn.__name__: fn for fn in (busy_runs, make_quick, every_minute, stored_file)}

if __name__ == "__main__":
    print(json.dumps(STEPS[sys.argv[1]](*sys.argv[2:])))
