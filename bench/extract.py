"""Extract speed and memory: Courier's source+CSV stage vs a bare pyodbc loop vs psql \\copy.

    .venv/bin/python bench/extract.py [--rows 1000000] [--big-rows 5000000]

Uses the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth).
Each variant runs in its own process so its peak RSS is its own.
Prints `RESULT name=value` lines at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "courier_bench"
ADMIN_ODBC = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=postgres;Uid=postgres;"
BENCH_ODBC = f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database={DB};Uid=postgres;"
QUERY = "SELECT id, qty, price, ratio, label, note, created, maybe FROM bench_rows WHERE id <= {rows} ORDER BY id"


def prepare_table(rows: int) -> None:
    """8 mixed columns: ints, decimals, text with commas and quotes, timestamps, NULLs."""
    import pyodbc

    admin = pyodbc.connect(ADMIN_ODBC, autocommit=True)
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = ?", DB).fetchone():
        admin.execute(f"CREATE DATABASE {DB}")
    admin.close()
    cnxn = pyodbc.connect(BENCH_ODBC, autocommit=True)
    have = cnxn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'bench_rows'").fetchone()[0]
    if have and cnxn.execute("SELECT count(*) FROM bench_rows").fetchone()[0] >= rows:
        return
    cnxn.execute("DROP TABLE IF EXISTS bench_rows")
    cnxn.execute(
        "CREATE TABLE bench_rows AS SELECT g AS id, (g % 1000)::int AS qty, (g * 1.37 % 10000)::numeric(12,2) AS price,"
        " (g % 97) / 7.0::float8 AS ratio, 'item ' || g || ', \"quoted\"' AS label,"
        " repeat('x', (g % 40)) AS note, timestamp '2026-01-01' + g * interval '1 second' AS created,"
        " CASE WHEN g % 5 = 0 THEN NULL ELSE g END AS maybe FROM generate_series(1, ?) g", rows,
    )
    cnxn.execute("ALTER TABLE bench_rows ADD PRIMARY KEY (id)")
    cnxn.close()


def variant_bare(rows: int, out: Path) -> int:
    import pyodbc

    cnxn = pyodbc.connect(BENCH_ODBC + "UseDeclareFetch=1;Fetch=5000;")
    cursor = cnxn.cursor()
    cursor.execute(QUERY.format(rows=rows))
    count = 0
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([c[0] for c in cursor.description])
        while batch := cursor.fetchmany(5000):
            writer.writerows(["" if v is None else v for v in row] for row in batch)
            count += len(batch)
    return count


def variant_courier(rows: int, out: Path) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from runs.pipeline.runner import execute
    from runs.services import create_run
    from tests import factories

    source = factories.connection("database", dialect="postgresql", odbc=BENCH_ODBC, query_timeout=0)
    task = factories.query_task(factories.project(), source, QUERY.format(rows=rows), output_name="bench.csv")
    run_id = create_run(task, "manual").pk
    # Only the run is timed: Django's start-up and migrations are not extract work.
    global _started
    _started = time.perf_counter()
    run = execute(run_id)
    if run.status != "succeeded":
        raise SystemExit(f"Courier run failed: {run.error}")
    record = run.files.get()
    Path(record.stored.path).rename(out)
    return run.rows


def variant_psql(rows: int, out: Path) -> int:
    sql = f"\\copy ({QUERY.format(rows=rows)}) TO '{out}' WITH (FORMAT csv, HEADER)"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-q", "-c", sql], check=True)
    return rows


_started = 0.0

VARIANTS = {"bare": variant_bare, "courier": variant_courier, "psql": variant_psql}


def measure(variant: str, rows: int) -> tuple[float, float]:
    """(rows per second, peak RSS in MB) of one variant in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.csv"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, __file__, "--child", variant, "--rows", str(rows), "--out", str(out)],
                                env=env, stdout=subprocess.PIPE, text=True)
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = float(output.split("ELAPSED ")[1].split()[0]) if "ELAPSED " in output else 0.0
        if status:
            raise SystemExit(f"{variant} failed with status {status}")
        lines = sum(1 for _ in open(out, encoding="utf-8")) - 1
        if lines != rows:
            raise SystemExit(f"{variant} wrote {lines} rows, expected {rows}")
    return rows / elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--child")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        global _started
        _started = time.perf_counter()
        VARIANTS[args.child](args.rows, Path(args.out))
        print(f"ELAPSED {time.perf_counter() - _started:.3f}")
        return
    prepare_table(max(args.rows, args.big_rows))
    results = {}
    for variant in ("bare", "courier", "psql"):
        speed, rss = measure(variant, args.rows)
        results[variant] = speed
        print(f"{variant:8} {args.rows} rows: {speed:,.0f} rows/s, peak RSS {rss:.0f} MB")
        print(f"RESULT {variant}_rows_per_s={speed:.0f}")
        print(f"RESULT {variant}_peak_rss_mb_{args.rows}={rss:.0f}")
    if args.big_rows:
        speed, rss = measure("courier", args.big_rows)
        print(f"courier  {args.big_rows} rows: {speed:,.0f} rows/s, peak RSS {rss:.0f} MB")
        print(f"RESULT courier_peak_rss_mb_{args.big_rows}={rss:.0f}")
    print(f"RESULT courier_vs_bare={results['courier'] / results['bare']:.2f}")
    print(f"RESULT courier_vs_psql={results['courier'] / results['psql']:.2f}")


if __name__ == "__main__":
    main()
