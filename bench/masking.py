"""Log masking throughput: how many run-log lines per second the one masker (connections/masking.py) handles.

    .venv/bin/python bench/masking.py [--lines 100000] [--repeat 3]

The secrets of a busy task: Courier's own keys, an ODBC string with its
password, an SFTP password, an OpenSSH private key (every line of it is a
secret too) with its passphrase, a GitLab token and three sensitive
parameters. Each is masked as written, JSON-escaped, HTML-escaped, hex and
base64 (standard and URL-safe, three alignments), so the masker holds a few
hundred forms. Three logs are masked:

- clean: ordinary log lines (60–120 characters), none holding a secret;
- mixed: the same with 1 % of the lines printing a secret in clear or encoded;
- blobs: 4 kB base64 lines (an environment dump), 1 % of them holding a secret.

The best of the repeats is reported, in lines per second. Building the
masker (once per run) is timed too. Prints `RESULT name=value` lines.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402

WORDS = ["rows", "fetched", "from", "table", "customer", "the", "file", "was", "written", "to", "/data/out/2026-01-02.csv",
         "id=1234", "ok", "Uploaded", "bytes", "via", "Acme/drop", "batch", "query", "returned", "md5", "sha256"]


def task_secrets() -> list[str]:
    key_lines = [base64.b64encode(secrets.token_bytes(52)).decode()[:70] for _ in range(6)]
    private_key = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *key_lines, "-----END OPENSSH PRIVATE KEY-----"])
    return [
        f"Driver={{ODBC Driver 18 for SQL Server}};Server=db.internal;Database=dw;Uid=etl;Pwd={secrets.token_urlsafe(16)};",
        secrets.token_urlsafe(12), private_key, secrets.token_urlsafe(10), f"glpat-{secrets.token_urlsafe(15)}",
        secrets.token_hex(8), f"'{secrets.token_urlsafe(9)}'", secrets.token_urlsafe(24),
    ]


def plain_line(rng: random.Random) -> str:
    line = ""
    while len(line) < rng.randint(60, 120):
        line += rng.choice(WORDS) + " "
    return line.strip()


def leaking_line(rng: random.Random, secret: str) -> str:
    before = "x" * rng.randint(0, 2)  # any of the three base64 alignments
    shown = rng.choice([secret, secret.encode().hex(), base64.b64encode((before + secret).encode()).decode()])
    return f"{plain_line(rng)[:40]} {shown} {plain_line(rng)[:30]}"


def logs(count: int, values: list[str]) -> dict[str, list[str]]:
    rng = random.Random(7)
    clean = [plain_line(rng) for _ in range(count)]
    mixed = [leaking_line(rng, rng.choice(values)) if i % 100 == 0 else line for i, line in enumerate(clean)]
    env = {f"VAR_{i}": secrets.token_urlsafe(30) for i in range(60)}
    blobs = []
    for i in range(max(1, count // 50)):
        dump = dict(env, SECRET=rng.choice(values)) if i % 100 == 0 else env
        blobs.append(base64.b64encode(json.dumps(dump).encode()).decode())
    return {"clean": clean, "mixed": mixed, "blobs": blobs}


def best_rate(masker, lines: list[str], repeat: int) -> tuple[float, int]:
    best, masked = 0.0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        out = [masker.mask(line) for line in lines]
        best = max(best, len(lines) / (time.perf_counter() - started))
        masked = sum(1 for before, after in zip(lines, out, strict=True) if before != after)
    return best, masked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(describe_machine(), flush=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from connections.masking import Masker, courier_secrets

    values = task_secrets()
    started = time.perf_counter()
    masker = Masker([*courier_secrets(), *values])
    build_ms = (time.perf_counter() - started) * 1000
    print(f"masker: {len(values)} task secrets + Courier's keys -> {len(masker.needles)} forms, built in {build_ms:.1f} ms")
    for name, lines in logs(args.lines, values).items():
        rate, masked = best_rate(masker, lines, args.repeat)
        print(f"{name:6} {len(lines):>7} lines: {rate:>10,.0f} lines/s ({masked} lines masked)")
        print(f"RESULT masking_{name}_lines_per_s={rate:.0f}")
    print(f"RESULT masker_build_ms={build_ms:.1f}")


if __name__ == "__main__":
    main()
