"""Small steps of the multi-machine tests, run as `python -m tests.cluster_helper STEP ARGS…`.

They run in their own process under tests.settings_pg (PostgreSQL + Redis),
like any other machine of the site would, and print one JSON object.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.models import Schedule, Success  # noqa: E402

from projects import scheduling  # noqa: E402
from projects.models import Project  # noqa: E402
from runs import jobs, services  # noqa: E402
from runs.models import Run  # noqa: E402
from tests import factories  # noqa: E402


@transaction.atomic
def setup_firing(prefix: str, count: str, odbc: str) -> dict:
    """`count` projects of one task each, every trigger kind among them, all made due one moment ago."""
    owner = get_user_model().objects.get_or_create(username="owner")[0]
    conn = factories.connection("database", name=f"{prefix}-db", dialect="sqlite", odbc=odbc)
    due = (timezone.now() - timedelta(seconds=2)).replace(microsecond=0)
    kinds = ["once", "cron", "interval"]
    names = []
    for number in range(int(count)):
        kind = kinds[number % 3]
        triggers = {"once": {"once_at": due}, "cron": {"cron": "0 3 * * *"}, "interval": {"interval_every": 1, "interval_unit": "days"}}[kind]
        project = Project.objects.create(name=f"{prefix}-{number:03d}", owner=owner, timezone="Europe/Amsterdam", **triggers)
        factories.query_task(project, conn, "select 1 as n", name="t")
        names.append(scheduling.schedule_name(project.pk, kind))
    # The cron and interval rows were armed for their real next time: make them due now (only these projects').
    Schedule.objects.filter(name__in=names).update(next_run=due)
    return {"due": due.isoformat(), "schedules": Schedule.objects.filter(name__in=names, next_run=due).count()}


def counts(prefix: str, due: str) -> dict:
    runs = Run.objects.filter(task__project__name__startswith=f"{prefix}-")
    per_task = runs.values("task").annotate(n=Count("id"))
    schedules = Schedule.objects.filter(name__startswith=scheduling.PROJECT_PREFIX)
    return {
        "runs": runs.count(),
        "intended_due": runs.filter(intended_at=due).count(),
        "by_status": dict(runs.values_list("status").annotate(n=Count("id"))),
        "max_per_task": max((row["n"] for row in per_task), default=0),
        "tasks_with_runs": len(per_task),
        "workers": sorted(set(runs.values_list("worker", flat=True))),
        "fire_tasks": Success.objects.filter(func="runs.jobs.fire_project").count(),
        "armed_future": schedules.filter(repeats=1, next_run__gt=timezone.now()).count(),
        "left_due": schedules.filter(repeats__gt=0, next_run__lte=timezone.now()).count(),
        "once_fired": Project.objects.filter(name__startswith=f"{prefix}-", once_fired_for__isnull=False).count(),
    }


def setup_slow(odbc: str) -> dict:
    """A task whose query sleeps (the worker is killed during it), one retry a minute later; a run is queued."""
    owner = get_user_model().objects.get_or_create(username="owner")[0]
    project = Project.objects.create(name="Slow", owner=owner)
    conn = factories.connection("database", name="slow-db", dialect="postgresql", odbc=odbc, query_timeout=300)
    task = factories.query_task(project, conn, "select 1 as n from (select pg_sleep(120)) as nap", name="crunch",
                                retry_max=1, retry_delay_minutes=1)
    run = services.run_now(task)
    return {"task": task.pk, "run": run.pk}


def retry_now(task_id: str) -> dict:
    """The runs as they are; then the retry's delay is over and django-q2's own scheduler starts it.

    (A cluster's scheduler would do so within 30 s of the due time.)
    """
    from django_q.scheduler import scheduler

    before = run_state(task_id)
    pending = Run.objects.get(task_id=int(task_id), status="retry_scheduled")
    Schedule.objects.filter(pk=pending.schedule_id).update(next_run=timezone.now())
    scheduler()
    return before


def run_state(task_id: str) -> dict:
    runs = Run.objects.filter(task_id=int(task_id)).order_by("id")
    return {"runs": [
        {"id": run.pk, "status": run.status, "attempt": run.attempt, "worker": run.worker, "error": run.error,
         "retry_of": run.retry_of_id, "schedule_id": run.schedule_id,
         "schedule": Schedule.objects.filter(pk=run.schedule_id).values("name", "func", "args").first() if run.schedule_id else None,
         "started": run.started_at.isoformat() if run.started_at else None,
         "heartbeat": run.heartbeat_at.isoformat() if run.heartbeat_at else None}
        for run in runs
    ]}


def fire_while_paused(odbc: str) -> dict:
    """In a process started after `scheduler pause`: a firing starts nothing; after resume it does."""
    owner = get_user_model().objects.get_or_create(username="owner")[0]
    project = Project.objects.create(name="paused-p", owner=owner, cron="0 6 * * *")
    conn = factories.connection("database", name="paused-db", dialect="sqlite", odbc=odbc)
    factories.query_task(project, conn, "select 1 as n", name="t")
    paused = jobs.fire_project(project.pk, "cron", timezone.now().isoformat())
    runs_while_paused = Run.objects.filter(task__project=project).count()
    services.resume_scheduler()
    jobs.fire_project(project.pk, "cron", timezone.now().isoformat())
    return {"paused": paused, "runs_while_paused": runs_while_paused, "runs_after_resume": Run.objects.filter(task__project=project).count()}


@transaction.atomic
def setup_missed(odbc: str) -> dict:
    """Every-minute crons whose schedules were left behind by a downtime over three fire times.

    The state a stopped cluster leaves: each schedule still armed for the first
    fire time it did not fire, two minutes before the last one. One project per
    policy, and one "all" whose catch-up window (1 minute) only the last time fits.
    """
    owner = get_user_model().objects.get_or_create(username="owner")[0]
    conn = factories.connection("database", name="missed-db", dialect="sqlite", odbc=odbc)
    last = timezone.now().replace(second=0, microsecond=0)
    first = last - timedelta(minutes=2)
    for name, policy, window in (("none", "none", 360), ("latest", "latest", 360), ("all", "all", 360), ("window", "all", 1)):
        project = Project.objects.create(name=f"missed-{name}", owner=owner, cron="* * * * *", timezone="Europe/Amsterdam",
                                         missed_policy=policy, catch_up_minutes=window)
        factories.query_task(project, conn, "select 1 as n", name="t")
        Schedule.objects.filter(name=scheduling.schedule_name(project.pk, "cron")).update(next_run=first)
    return {"times": [(first + timedelta(minutes=n)).isoformat() for n in range(3)]}


def missed_state(times: str) -> dict:
    """Per project: the missed fire times, the catch-up runs, and how often any fire time was recorded."""
    wanted = times.split(",")
    runs = Run.objects.filter(task__project__name__startswith="missed-")
    result = {}
    for project in Project.objects.filter(name__startswith="missed-"):
        mine = runs.filter(task__project=project)
        result[project.name.removeprefix("missed-")] = {
            "missed": sorted(at.isoformat() for at in mine.filter(status="missed").values_list("intended_at", flat=True)),
            "catch_ups": sorted((run.intended_at.isoformat(), run.status) for run in mine.filter(trigger="catch_up")),
            "late_times_started": mine.filter(trigger="schedule", intended_at__in=wanted).exclude(status="missed").count(),
        }
    repeats = runs.filter(trigger__in=["schedule", "catch_up"]).values("task", "intended_at", "trigger").annotate(n=Count("id"))
    result["most_per_fire_time"] = max((row["n"] for row in repeats), default=0)
    return result


def setup_shared(odbc: str, outbox: str) -> dict:
    """A run queued for whichever cluster is up; its upload fails while a file of its name is in the way; one retry."""
    get_user_model().objects.create_superuser("webadmin", "webadmin@example.test", "webadmin-pass-1")
    owner = get_user_model().objects.get_or_create(username="owner")[0]
    project = Project.objects.create(name="Shared", owner=owner)
    conn = factories.connection("database", name="shared-db", dialect="sqlite", odbc=odbc)
    task = factories.query_task(project, conn, "select 1 as n union select 2 as n", name="two",
                                retry_max=1, retry_delay_minutes=1, retry_on_every_failure=True)
    factories.destination(task, factories.connection("folder", name="outbox", folder=outbox), folder="in")
    run = services.run_now(task)
    return {"task": task.pk, "run": run.pk}


def shared_state(task_id: str) -> dict:
    runs = Run.objects.filter(task_id=int(task_id)).order_by("id")
    return {"runs": [
        {"id": run.pk, "status": run.status, "worker": run.worker, "error": run.error, "retry_of": run.retry_of_id,
         "files": [{"id": f.pk, "name": f.name, "sha256": f.sha256, "path": f.stored.name} for f in run.files.all()],
         "deliveries": [(d.status, d.file.name if d.file else None) for d in run.deliveries.order_by("id")]}
        for run in runs
    ]}


STEPS = {fn.__name__: fn for fn in (setup_firing, counts, setup_slow, retry_now, run_state, fire_while_paused, setup_missed, missed_state,
                                          setup_shared, shared_state)}

if __name__ == "__main__":
    print(json.dumps(STEPS[sys.argv[1]](*sys.argv[2:])))
