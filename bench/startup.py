"""Command start-up: wall and CPU time of `manage.py run_task --wait` on a trivial task.

    .venv/bin/python bench/startup.py [--repeat 9] [--compare /path/to/other/checkout] [--no-bytecode] [--importtime]

Makes a throwaway Courier site (production settings, the embedded SQLite
default, in a temporary folder), migrates it and adds one task that reads
`select 1` from an SQLite file over ODBC into a CSV. Then it times the
whole command, interpreter start to exit, `--repeat` times. With
`--compare`, another checkout (e.g. a `git worktree` of main) runs the same
command on the same database, taking turns with this one, so both see the
same load (the other checkout's migrations must be among this one's, e.g.
main before this branch). Bytecode is cached as in a deployment (the first
run of each checkout is not counted); `--no-bytecode` times a fresh clone
run with PYTHONDONTWRITEBYTECODE=1 instead (as on this machine's shells):
the checkouts' own __pycache__ folders are removed first, so every Courier
module is compiled on every start. `--importtime` lists the slowest top-level imports
of this checkout (python -X importtime). Prints `RESULT name=value` lines.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, load  # noqa: E402

TASK = "Startup/ping"
SETUP = """
from tests import factories
source = factories.connection("database", name="src", dialect="sqlite", odbc="Driver={{SQLite3}};Database={db};")
factories.query_task(factories.project("Startup"), source, "select 1 as n", name="ping", output_name="ping.csv")
"""


def site_env(var: Path, bytecode: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(SECRET_KEY="bench-startup", COURIER_SECRET_KEYS="pJ4z6cQwQ3cHq6Lr8mXo2n1d4x5v7b9k0s2u4w6y8A0=",
               COURIER_ENV_FILE="/dev/null", COURIER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="etlsite.settings")
    return env


def make_site(var: Path) -> None:
    env = site_env(var)
    db = var / "source.sqlite3"
    sqlite3.connect(db).close()
    for args in (["migrate", "-v0"], ["shell", "-c", SETUP.format(db=db)]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def timed(checkout: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `run_task --wait`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "manage.py", "run_task", "--wait", TASK], cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"run_task failed in {checkout}:\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def importtime(env: dict[str, str], top: int = 15) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "manage.py", "run_task", "--wait", TASK], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            rows.append((int(parts[1]), parts[2].strip()))
    print(f"slowest top-level imports (cumulative ms), of {sum(us for us, _ in rows) / 1000:.0f} ms in all:")
    for us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {us / 1000:6.0f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--compare", type=Path, help="another checkout to time on the same database, taking turns")
    parser.add_argument("--no-bytecode", action="store_true", help="a fresh clone that writes no bytecode caches")
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    print(describe_machine())
    var = Path(tempfile.mkdtemp(prefix="courier-bench-startup-"))
    try:
        make_site(var)
        env = site_env(var, bytecode=not args.no_bytecode)
        checkouts = {"this": ROOT, **({"other": args.compare.resolve()} if args.compare else {})}
        figures: dict[str, list[tuple[float, float]]] = {label: [] for label in checkouts}
        for checkout in checkouts.values():
            if args.no_bytecode:
                for cache in checkout.glob("[a-z]*/**/__pycache__"):
                    shutil.rmtree(cache, ignore_errors=True)
            timed(checkout, env)  # writes the bytecode caches (unless --no-bytecode)
        for _ in range(args.repeat):
            for label, checkout in checkouts.items():
                figures[label].append(timed(checkout, env))
        print(f"load average after: {load()}")
        for label, runs in figures.items():
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            print(f"{label:6} {checkouts[label]}: wall median {statistics.median(walls):.2f} s (min {min(walls):.2f}, "
                  f"max {max(walls):.2f}), CPU median {statistics.median(cpus):.2f} s")
            print(f"RESULT {label}_wall_median_s={statistics.median(walls):.2f}")
            print(f"RESULT {label}_cpu_median_s={statistics.median(cpus):.2f}")
        if args.importtime:
            importtime(env)
    finally:
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
