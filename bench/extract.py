"""Extract speed and memory: Courier's source+CSV stage (COPY fast path and ODBC) vs a bare pyodbc loop vs psql \\copy.

    .venv/bin/python bench/extract.py [--rows 1000000] [--big-rows 5000000] [--repeat 3] [--drop]

Uses the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and
a table of 8 mixed columns (ints, decimals, floats, text with commas and
quotes, timestamps, NULLs) in a database of its own, `courier_bench`, kept
between runs so the table is made only once (`--drop` removes it).

Each variant runs in its own process, so its peak RSS is its own:

- bare: pyodbc `fetchmany` with the same streaming options Courier adds,
  straight into `csv.writer(...).writerows` (the floor for Python + ODBC);
- courier: a real Courier run of a query task (bench/settings.py: SQLite for
  Django's own tables in a temporary folder), through the PostgreSQL COPY fast
  path (runs/pipeline/pgcopy.py). Its source+CSV stage is timed on its own (that is what
  the bare loop does too); the whole run adds hashing and storing the file;
- courier_odbc: the same with the connection's fast path switched off (ODBC);
- psql: `\\copy (query) TO file CSV` (native, no ODBC, no Python);
- django: Django set up with the task created but no run — the baseline RSS
  that Courier's run starts from, so that "flat in row count" is visible.

The variants take turns, `--repeat` times; the best time of each is kept (the
machine is shared: the best run is the least disturbed one). The bare and
files of both Courier paths must be byte for byte the same. Prints `RESULT name=value` lines.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402

DB = "courier_bench"
ADMIN_ODBC = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=postgres;Uid=postgres;"
BENCH_ODBC = f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database={DB};Uid=postgres;"
QUERY = "SELECT id, qty, price, ratio, label, note, created, maybe FROM bench_rows WHERE id <= {rows} ORDER BY id"
FETCH = 5000  # Courier's default COURIER_FETCH_BATCH


def prepare_table(rows: int) -> None:
    """8 mixed columns: ints, decimals, floats, text with commas and quotes, timestamps, NULLs."""
    import pyodbc

    admin = pyodbc.connect(ADMIN_ODBC, autocommit=True)
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = ?", DB).fetchone():
        admin.execute(f"CREATE DATABASE {DB}")
    admin.close()
    cnxn = pyodbc.connect(BENCH_ODBC, autocommit=True)
    have = cnxn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'bench_rows'").fetchone()[0]
    if have and cnxn.execute("SELECT count(*) FROM bench_rows").fetchone()[0] >= rows:
        return
    print(f"making bench_rows with {rows:,} rows…", flush=True)
    cnxn.execute("DROP TABLE IF EXISTS bench_rows")
    cnxn.execute(
        "CREATE TABLE bench_rows AS SELECT g AS id, (g % 1000)::int AS qty, (g * 1.37 % 10000)::numeric(12,2) AS price,"
        " (g % 97) / 7.0::float8 AS ratio, 'item ' || g || ', \"quoted\"' AS label,"
        " repeat('x', (g % 40)) AS note, timestamp '2026-01-01' + g * interval '1 second' AS created,"
        " CASE WHEN g % 5 = 0 THEN NULL ELSE g END AS maybe FROM generate_series(1, ?) g", rows,
    )
    cnxn.execute("ALTER TABLE bench_rows ADD PRIMARY KEY (id)")
    cnxn.execute("VACUUM ANALYZE bench_rows")
    cnxn.close()


def drop_database() -> None:
    import pyodbc

    admin = pyodbc.connect(ADMIN_ODBC, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin.close()


# --------------------------------------------------------------------------
# Variants (each runs in a child process; returns the seconds it took)
# --------------------------------------------------------------------------

def variant_bare(rows: int, out: Path) -> float:
    import pyodbc

    started = time.perf_counter()
    cnxn = pyodbc.connect(BENCH_ODBC + f"UseDeclareFetch=1;Fetch={FETCH};", autocommit=True)
    cursor = cnxn.cursor()
    cursor.execute(QUERY.format(rows=rows))
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([c[0] for c in cursor.description])
        while batch := cursor.fetchmany(FETCH):
            writer.writerows(batch)  # the csv module writes NULL as an empty field, like Courier
    cnxn.close()
    return time.perf_counter() - started


def _courier_task(rows: int, copy_export: bool = True):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests import factories

    source = factories.connection("database", dialect="postgresql", odbc=BENCH_ODBC, query_timeout=0, copy_export=copy_export)
    return factories.query_task(factories.project(), source, QUERY.format(rows=rows), output_name="bench.csv")


def variant_django(rows: int, out: Path) -> float:
    """Django, its tables and the task, but no run: the floor of a Courier worker's memory."""
    _courier_task(rows)
    out.write_text("")
    return 0.0


def variant_courier_odbc(rows: int, out: Path) -> float:
    return variant_courier(rows, out, copy_export=False)


def variant_courier(rows: int, out: Path, copy_export: bool = True) -> float:
    task = _courier_task(rows, copy_export)
    from runs import runner
    from runs.pipeline import source
    from runs.runner import execute
    from runs.state import create_run

    stage = {}
    real_source = source.run

    def timed_source(ctx):
        started = time.perf_counter()
        real_source(ctx)
        stage["source"] = time.perf_counter() - started

    # The runner calls its STAGES in order, the source stage first: time exactly the source+CSV stage.
    assert runner.STAGES[0] is real_source
    runner.STAGES = (timed_source, *runner.STAGES[1:])
    run_id = create_run(task, "manual").pk
    started = time.perf_counter()
    run = execute(run_id)
    whole = time.perf_counter() - started
    if run.status != "succeeded":
        raise SystemExit(f"Courier run failed: {run.error}")
    through_copy = run.log_lines.filter(message__startswith="Reading through PostgreSQL's COPY").exists()
    if through_copy != copy_export:
        raise SystemExit(f"The run {'did not take' if copy_export else 'took'} the COPY path: the comparison is void.")
    record = run.files.get()
    Path(record.stored.path).rename(out)
    print(f"WHOLE_RUN {whole:.3f}")
    return stage["source"]


def variant_psql(rows: int, out: Path) -> float:
    sql = f"\\copy ({QUERY.format(rows=rows)}) TO '{out}' WITH (FORMAT csv, HEADER)"
    started = time.perf_counter()
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-q", "-c", sql], check=True)
    return time.perf_counter() - started


VARIANTS = {"bare": variant_bare, "courier": variant_courier, "courier_odbc": variant_courier_odbc, "psql": variant_psql,
            "django": variant_django}
TIMED = ("bare", "courier", "courier_odbc", "psql")


def _remove_test_var_dir() -> None:
    """tests.settings gives each process a fresh temporary folder (database, storage); drop it."""
    if "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured and Path(settings.VAR_DIR).name.startswith("courier-test-"):
            shutil.rmtree(settings.VAR_DIR, ignore_errors=True)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def measure(variant: str, rows: int, keep: Path | None = None) -> dict:
    """Seconds, whole-run seconds (Courier), peak RSS in MB and output hash of one variant in a child process."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        out = Path(tmp) / "out.csv"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, __file__, "--child", variant, "--rows", str(rows), "--out", str(out)],
                                env=env, stdout=subprocess.PIPE, text=True)
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            raise SystemExit(f"{variant} failed with status {status}:\n{output}")
        figures = dict(line.split(" ", 1) for line in output.splitlines() if line.startswith(("ELAPSED ", "WHOLE_RUN ")))
        result = {"seconds": float(figures["ELAPSED"]), "whole": float(figures.get("WHOLE_RUN", 0)),
                  "rss": usage.ru_maxrss / 1024, "load": os.getloadavg()[0]}
        if variant != "django":
            lines = _count_lines(out) - 1
            if lines != rows:
                raise SystemExit(f"{variant} wrote {lines} rows, expected {rows}")
            result["sha256"] = _sha256(out)
    return result


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def report(args) -> None:
    print(describe_machine())
    prepare_table(max(args.rows, args.big_rows))
    best: dict[str, dict] = {}
    for _attempt in range(args.repeat):
        for variant in TIMED:
            result = measure(variant, args.rows)
            extra = f", whole run {args.rows / result['whole']:,.0f} rows/s" if result["whole"] else ""
            print(f"{variant:12} {args.rows:,} rows: {args.rows / result['seconds']:,.0f} rows/s{extra}, "
                  f"peak RSS {result['rss']:.0f} MB (load {result['load']:.2f})", flush=True)
            if variant not in best or result["seconds"] < best[variant]["seconds"]:
                best[variant] = result
    hashes = {variant: best[variant]["sha256"] for variant in TIMED}
    same = hashes["bare"] == hashes["courier_odbc"] == hashes["courier"]
    print(f"bare, Courier through ODBC and Courier through COPY identical: {same}; psql's file identical: {hashes['psql'] == hashes['bare']}")
    if not same:
        raise SystemExit("The files differ: the comparison is void.")
    baseline = measure("django", args.rows)
    print(f"django baseline (set up, migrated, task made, no run): peak RSS {baseline['rss']:.0f} MB")
    speed = {variant: args.rows / result["seconds"] for variant, result in best.items()}
    for variant in TIMED:
        print(f"RESULT {variant}_rows_per_s={speed[variant]:.0f}")
    print(f"RESULT courier_whole_run_rows_per_s={args.rows / best['courier']['whole']:.0f}")
    print(f"RESULT courier_vs_bare={speed['courier'] / speed['bare']:.2f}")
    print(f"RESULT courier_odbc_vs_bare={speed['courier_odbc'] / speed['bare']:.2f}")
    print(f"RESULT courier_vs_psql={speed['courier'] / speed['psql']:.2f}")
    print(f"RESULT django_baseline_rss_mb={baseline['rss']:.0f}")
    for variant in ("courier", "courier_odbc", "bare"):
        print(f"RESULT {variant}_peak_rss_mb_{args.rows}={best[variant]['rss']:.0f}")
    if args.big_rows:
        big = measure("courier", args.big_rows)
        print(f"courier      {args.big_rows:,} rows: {args.big_rows / big['seconds']:,.0f} rows/s, peak RSS {big['rss']:.0f} MB "
              f"(load {big['load']:.2f})")
        print(f"RESULT courier_peak_rss_mb_{args.big_rows}={big['rss']:.0f}")
        print(f"RESULT courier_rows_per_s_{args.big_rows}={args.big_rows / big['seconds']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000, help="second Courier run for memory; 0 to skip")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop", action="store_true", help=f"drop the {DB} database at the end")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        try:
            print(f"ELAPSED {VARIANTS[args.child](args.rows, Path(args.out)):.3f}")
        finally:
            _remove_test_var_dir()
        return
    try:
        report(args)
    finally:
        if args.drop:
            drop_database()


if __name__ == "__main__":
    main()
