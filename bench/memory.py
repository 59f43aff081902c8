"""Memory of a query's rows on every dialect: peak RSS at 10,000 rows vs 1,000,000 rows, each in a fresh process.

    .venv/bin/python bench/memory.py [--rows 1000000] [--small 10000] [--dialects postgresql,mysql,sqlite]

Each measurement is a process of its own that runs Courier's ODBC source
(`connections.clients.odbc.DatabaseClient.run_query`, with the streaming options it adds
for the driver) and writes every row to a CSV file with the csv module, as
the source stage does, keeping nothing; it reports its peak RSS (VmHWM).
The rows come from the query itself (a series of numbers with 200
characters of padding), so no table is needed:

- postgresql: the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust);
- mysql: the machine's MariaDB (127.0.0.1:3306, root, no password), its SEQUENCE engine;
- sqlite: a recursive query on an empty SQLite file.

Each dialect is also measured without its streaming option (the driver's
default), to show what the option saves. SQL Server (FreeTDS) has no server
here to measure against. Prints `RESULT name=value` lines (MB).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402

ODBC = {
    "postgresql": "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=postgres;Uid=postgres;",
    "mysql": "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Uid=root;Pwd=;Database=mysql;",
    "sqlite": "Driver={SQLite3};Database={path};",
}
QUERY = {
    "postgresql": "SELECT n, repeat('x', 200) AS pad FROM generate_series(1, {rows}) AS n",
    "mysql": "SELECT seq AS n, REPEAT('x', 200) AS pad FROM seq_1_to_{rows}",
    "sqlite": "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) "
              "SELECT n, printf('%.200c', 'x') AS pad FROM s",
}
# The driver's own default, which Courier's option replaces (the connection string's own setting wins).
UNSTREAMED = {"postgresql": "UseDeclareFetch=0;", "mysql": "NO_CACHE=0;", "sqlite": "StepAPI=0;"}

PROBE = r"""
import csv, re, sys, types
sys.path.insert(0, sys.argv[1])
from connections.clients import odbc
odbc_string, dialect, sql, out = sys.argv[2:6]
conn = types.SimpleNamespace(odbc=odbc_string, dialect=dialect, login_timeout=10, query_timeout=0, read_only=False, sql_bounds="")
rows = 0
def sink(columns, batches):
    global rows
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for batch in batches:
            writer.writerows(batch)
            rows += len(batch)
odbc.DatabaseClient(conn).run_query([sql], sink, batch=5000)
with open("/proc/self/status") as status:
    peak_kb = int(re.search(r"VmHWM:\s+(\d+)", status.read()).group(1))
print(rows, peak_kb)
"""


def peak_mb(dialect: str, rows: int, folder: Path, streamed: bool) -> float:
    odbc = ODBC[dialect].replace("{path}", str(folder / "empty.sqlite3"))
    if not streamed:
        odbc += UNSTREAMED[dialect]
    sql = QUERY[dialect].format(rows=rows)
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), odbc, dialect, sql, str(folder / "out.csv")],
                          capture_output=True, text=True, check=True)
    got, peak_kb = (int(value) for value in done.stdout.split())
    assert got == rows, f"{dialect}: {got} rows instead of {rows}"
    return peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--dialects", default="postgresql,mysql,sqlite")
    args = parser.parse_args()
    print(describe_machine())
    with tempfile.TemporaryDirectory(prefix="courier-memory-") as tmp:
        folder = Path(tmp)
        for dialect in args.dialects.split(","):
            small = peak_mb(dialect, args.small, folder, streamed=True)
            large = peak_mb(dialect, args.rows, folder, streamed=True)
            plain = peak_mb(dialect, args.rows, folder, streamed=False)
            print(f"{dialect}: {args.small:,} rows {small:.1f} MB, {args.rows:,} rows {large:.1f} MB "
                  f"(+{large - small:.1f} MB); without its streaming option {plain:.1f} MB")
            print(f"RESULT {dialect}_small_mb={small:.1f}")
            print(f"RESULT {dialect}_large_mb={large:.1f}")
            print(f"RESULT {dialect}_growth_mb={large - small:.1f}")
            print(f"RESULT {dialect}_unstreamed_large_mb={plain:.1f}")


if __name__ == "__main__":
    main()
