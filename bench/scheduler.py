"""Scheduler latency: 200 projects firing every minute, two qcluster processes on PostgreSQL + Redis.

    .venv/bin/python bench/scheduler.py [--projects 200] [--minutes 3] [--workers 1] [--phase S] [--poll S]

Uses the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth) with
a throwaway database and its Redis (127.0.0.1:6379) with a queue name of its
own, like tests/test_cluster.py. Each project has the cron `* * * * *` and one
trivial task (`select 1 as n` over ODBC into a CSV kept in Courier's storage).
Two `manage.py qcluster` processes (bench/settings_pg.py: production's
django-q2 timings, `--workers` worker processes each) stand in for two machines.

Measured over the firings due in the `--minutes` whole minutes after both
clusters are up:

- due-to-start latency: Run.started_at − Run.intended_at (the cron time), split
  into "scheduled" (due_at − intended_at: the scheduler pass that fired it,
  plus the firing task's turn in the queue) and "queued" (started_at − due_at:
  waiting for a worker);
- after_pass: started_at − the first due_at of that minute, i.e. the time from
  the scheduler pass to the start. django-q2's sentinel passes every ~30 s at a
  phase set by when the clusters started; each worker also asks its scheduler
  every COURIER_SCHEDULER_POLL_SECONDS (runs/schedulerpoll.py; `--poll S` sets
  it, 0 is off). The wait for a pass is at most the shorter of the two, so
  that + after_pass p95 is the worst phase's p95, which is reported too;
- runs per minute: succeeded runs of those firings per minute, and the rate at
  which the workers got through each minute's burst (first start to last
  finish), which is what the two workers can do.

`--phase S` starts the clusters S seconds after a whole minute, which sets
the phase of django-q2's 30 s scheduler pass (and of the workers' polls); the
observed phase of the pass that fired each minute (when its first firing was
made, after its minute) is printed.
Five runs at phases 0, 6, 12, 18 and 24 cover the cycle.

Prints `RESULT name=value` lines; the database and Redis keys are removed after.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, load  # noqa: E402
from tests.servers_common import shared_tmp, stop_process  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
ODBC = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=postgres;Uid=postgres;"
TARGET_P95_S = 35
PASS_EVERY_S = 30  # django-q2's scheduler pass (django_q/cluster.py: Sentinel.guard)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Site:
    """A throwaway database, queue name and folder; the clusters run as subprocesses."""

    def __init__(self, workers: int, poll: float | None) -> None:
        self.name = f"courier_bench_sched_{secrets.token_hex(4)}"
        self.var = shared_tmp("courier-bench-sched-")
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings_pg", "COURIER_TEST_PG_DB": self.name,
                    "COURIER_TEST_Q_NAME": self.name, "COURIER_TEST_VAR_DIR": str(self.var),
                    "COURIER_BENCH_WORKERS": str(workers), "COURIER_ENV_FILE": "/dev/null", "DEBUG": "false",
                    "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        if poll is not None:
            self.env["COURIER_SCHEDULER_POLL_SECONDS"] = f"{poll:g}"
        self.clusters: list[subprocess.Popen] = []

    def create(self) -> None:
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
            admin.execute(f"CREATE DATABASE {self.name}")
        done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks"], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise SystemExit(f"migrate failed:\n{done.stderr[-3000:]}")
        # This process reads and writes the same database as the clusters.
        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("COURIER_", "DJANGO_", "DEBUG"))})
        import django

        django.setup()

    def start_cluster(self, label: str) -> None:
        log = open(self.var / f"cluster-{label}.log", "wb")  # noqa: SIM115 - closed with the process
        self.clusters.append(subprocess.Popen([sys.executable, "manage.py", "qcluster", "--skip-checks"], cwd=ROOT,
                                              env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for proc in self.clusters:
            stop_process(proc, signal.SIGTERM, timeout=30)

    def firings_check(self) -> dict:
        """Once stopped: every firing the scheduler made (its log line) against the fire times that have runs.

        A fire time fired twice would still make one run (the second firing
        starts nothing), so only django-q2's own log shows it.
        """
        from runs.models import Run, Trigger

        log = "\n".join(path.read_text(errors="replace") for path in sorted(self.var.glob("cluster-*.log")))
        fire_times = Run.objects.filter(trigger=Trigger.SCHEDULE).values("task_id", "intended_at").distinct().count()
        return {"created": len(re.findall(r"created task \S+ from schedule \[courier:project:", log)),
                "fire_times": fire_times, "errors": log.count("Could not create task from schedule")}

    def remove(self) -> None:
        self.stop()
        from django.db import connections

        connections.close_all()
        import psycopg
        import redis

        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        keys = redis.Redis(host="127.0.0.1", port=6379)
        for key in keys.scan_iter(f"django_q:{self.name}:*"):
            keys.delete(key)
        shutil.rmtree(self.var, ignore_errors=True)


def make_projects(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from projects.models import Project
    from tests import factories

    with transaction.atomic():
        owner = get_user_model().objects.create_user("owner")
        conn = factories.connection("database", name="pg", dialect="postgresql", odbc=ODBC)
        for number in range(count):
            # Saving a project arms its django-q2 schedule for the next whole minute.
            project = Project.objects.create(name=f"every-minute-{number:03d}", owner=owner, cron="* * * * *")
            factories.query_task(project, conn, "select 1 as n", name="ping")


def wait_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 5))


def measure(site: Site, args) -> dict:
    from django.utils import timezone

    from runs.models import Run, Trigger

    make_projects(args.projects)
    if args.phase is not None:
        wait_until(time.time() + (args.phase - time.time()) % 60)
    site.start_cluster("a")
    site.start_cluster("b")
    # Firings from the first whole minute at least 20 s after the start (the clusters are up by then).
    first = (timezone.now() + timedelta(seconds=20)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    last = first + timedelta(minutes=args.minutes - 1)
    print(f"clusters started; measuring the firings due {first:%H:%M}–{last:%H:%M} UTC", flush=True)
    window = Run.objects.filter(trigger=Trigger.SCHEDULE, intended_at__gte=first, intended_at__lte=last)
    deadline = last.timestamp() + 120
    while time.time() < deadline:
        time.sleep(5)
        # Done once the last minute's runs exist and none of the window's runs waits any more.
        if time.time() > last.timestamp() + 10 and window.filter(intended_at=last).count() >= args.projects \
                and not window.filter(status__in=["queued", "running"]).exists():
            break
        print(f"  {timezone.now():%H:%M:%S} runs in window: {window.count()}, load {load()}", flush=True)
    return summarize(list(window.values("intended_at", "due_at", "started_at", "finished_at", "status")), args)


def summarize(runs: list[dict], args) -> dict:
    started = [r for r in runs if r["started_at"]]
    latency = [(r["started_at"] - r["intended_at"]).total_seconds() for r in started]
    scheduled = [(r["due_at"] - r["intended_at"]).total_seconds() for r in runs]
    queued = [(r["started_at"] - r["due_at"]).total_seconds() for r in started]
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    bursts, after_pass, phases = [], [], []
    for minute in sorted({r["intended_at"] for r in runs}):
        of_minute = [r for r in runs if r["intended_at"] == minute]
        # The first run of a minute is made right after the scheduler pass that found the firings due.
        passed = min(r["due_at"] for r in of_minute)
        phases.append((passed - minute).total_seconds())
        after_pass += [(r["started_at"] - passed).total_seconds() for r in of_minute if r["started_at"]]
        done = [r for r in of_minute if r["started_at"] and r["finished_at"]]
        if len(done) > 1:
            span = (max(r["finished_at"] for r in done) - min(r["started_at"] for r in done)).total_seconds()
            bursts.append(len(done) / span * 60)
    expected = args.projects * args.minutes
    from django.conf import settings

    poll = settings.COURIER_SCHEDULER_POLL_SECONDS
    return {
        "poll": poll, "longest_wait": min(PASS_EVERY_S, poll) if poll > 0 else PASS_EVERY_S,
        "expected": expected, "runs": len(runs), "statuses": statuses, "latency": latency,
        "scheduled": scheduled, "queued": queued, "after_pass": after_pass, "burst_rate": statistics.median(bursts) if bursts else 0.0,
        "phase": statistics.median(phases) if phases else 0.0,
        "per_minute": statuses.get("succeeded", 0) / args.minutes,
    }


def report(result: dict) -> None:
    latency = result["latency"]
    print(f"workers poll the scheduler every {result['poll']:g} s (0: off), beside django-q2's {PASS_EVERY_S} s pass")
    print(f"firings expected {result['expected']}, runs made {result['runs']}, by status {result['statuses']}")
    for label in ("latency", "scheduled", "queued", "after_pass"):
        values = result[label]
        if values:
            print(f"{label:10} p50 {percentile(values, 0.5):5.1f} s  p95 {percentile(values, 0.95):5.1f} s  "
                  f"max {max(values):5.1f} s")
    worst = result["longest_wait"] + percentile(result["after_pass"], 0.95)
    measured = percentile(latency, 0.95)
    print(f"target p95 ≤ {TARGET_P95_S} s: measured {measured:.1f} s ({'met' if measured <= TARGET_P95_S else 'missed'}), "
          f"at the worst scheduler phase {worst:.1f} s ({'met' if worst <= TARGET_P95_S else 'missed'})")
    print(f"scheduler pass observed {result['phase']:.1f} s after each minute (median over the minutes)")
    print(f"load average after: {load()}")
    print(f"RESULT latency_p50_s={percentile(latency, 0.5):.1f}")
    print(f"RESULT latency_p95_s={percentile(latency, 0.95):.1f}")
    print(f"RESULT latency_max_s={max(latency):.1f}")
    # At the worst phase a firing waits a whole cycle of the scheduler first: django-q2's 30 s or the workers' polls.
    print(f"RESULT worst_phase_latency_p95_s={worst:.1f}")
    print(f"RESULT runs_per_minute={result['per_minute']:.0f}")
    print(f"RESULT burst_runs_per_minute={result['burst_rate']:.0f}")
    print(f"RESULT runs_missing={result['expected'] - result['statuses'].get('succeeded', 0)}")
    print(f"RESULT pass_phase_s={result['phase']:.1f}")
    firings = result["firings"]
    print(f"firings made by the schedulers {firings['created']}, fire times with runs {firings['fire_times']}, "
          f"failed scheduler passes {firings['errors']} (a firing whose message was still queued at the stop has no run)")
    print(f"RESULT firings_made_twice_at_most={max(0, firings['created'] - firings['fire_times'])}")
    print(f"RESULT scheduler_errors={firings['errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="worker processes in each of the two qclusters")
    parser.add_argument("--save-limit", type=int, help="django-q2's save_limit (default: the production setting)")
    parser.add_argument("--phase", type=int, help="start the clusters this many seconds after a whole minute (0-59)")
    parser.add_argument("--poll", type=float, help="COURIER_SCHEDULER_POLL_SECONDS of the workers (0: off; default: the setting's)")
    args = parser.parse_args()
    print(describe_machine())
    limit = "production's" if args.save_limit is None else str(args.save_limit)
    print(f"{args.projects} projects, two qclusters × {args.workers} worker(s), {limit} save_limit")
    if args.save_limit is not None:
        os.environ["COURIER_BENCH_SAVE_LIMIT"] = str(args.save_limit)
    site = Site(args.workers, args.poll)
    try:
        site.create()
        result = measure(site, args)
        site.stop()
        result["firings"] = site.firings_check()
    finally:
        site.remove()
    if not result["latency"]:
        raise SystemExit("No run started in the measured window: see the cluster logs (kept only while running).")
    report(result)


if __name__ == "__main__":
    main()
