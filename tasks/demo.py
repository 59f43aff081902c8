"""The demo data set: a SQLite warehouse read through the real SQLite3 ODBC driver, delivered to a local outbox."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from connections.models import Connection, Organization
from projects.models import Project, ProjectParameter
from tasks.models import CodeLocation, CodeRole, Destination, Task

DEMO_ROWS = 5000
CUSTOMERS = ["Acme Corp", "Globex", "Initech", "Umbrella", "Stark, Inc.", "Wayne \"WE\" Enterprises", "Zoë's Bakery"]
COUNTRIES = ["NL", "US", "DE", "FR", "GB", "CA"]


def build_warehouse(path: Path, rows: int = DEMO_ROWS) -> None:
    """A reproducible orders table (same rows every time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    rng = random.Random(20261128)
    start = datetime(2026, 1, 1)
    temp = path.with_suffix(".tmp")
    temp.unlink(missing_ok=True)
    with sqlite3.connect(temp) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, country TEXT, amount TEXT, ordered_at TEXT, note TEXT)")
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
            [
                (i, rng.choice(CUSTOMERS), rng.choice(COUNTRIES), f"{rng.randint(100, 99999) / 100:.2f}",
                 (start + timedelta(minutes=97 * i)).isoformat(sep=" "), None if i % 7 else "gift, wrapped")
                for i in range(1, rows + 1)
            ],
        )
    temp.rename(path)


def owner():
    users = get_user_model().objects
    return users.filter(is_superuser=True).order_by("pk").first() or users.get_or_create(username="admin")[0]


@transaction.atomic
def load_demo() -> Project:
    var = Path(settings.VAR_DIR)
    warehouse_path = var / "demo" / "warehouse.sqlite3"
    outbox = var / "outbox"
    build_warehouse(warehouse_path)
    outbox.mkdir(parents=True, exist_ok=True)

    org, _ = Organization.objects.get_or_create(name="Demo", defaults={"description": "Demo data shipped with Courier."})
    # Read only: the demo tasks only select, and a demo is where people try things out.
    warehouse = _connection(org, "warehouse", kind="database", dialect="sqlite", read_only=True,
                            odbc=f"Driver={{SQLite3}};Database={warehouse_path};")
    outbox_conn = _connection(org, "outbox", kind="folder", folder=str(outbox))

    project, _ = Project.objects.get_or_create(
        name="Demo", defaults={"owner": owner(), "cron": "0 6 * * *", "description": "Nightly demo extracts to var/outbox."}
    )
    ProjectParameter.objects.get_or_create(project=project, key="{client}", defaults={"value": "demo"})
    _task(project, "orders", warehouse, outbox_conn,
          "-- Every order, newest last\nSELECT id, customer, country, amount, ordered_at, note\nFROM orders\nORDER BY id",
          output_type="csv", output_name="orders_{client}_%Y%m%d.csv", rank=1)
    _task(project, "orders-by-country", warehouse, outbox_conn,
          "SELECT country, COUNT(*) AS orders, printf('%.2f', SUM(amount)) AS total FROM orders GROUP BY country ORDER BY country",
          output_type="text", output_delimiter="|", output_name="by_country_%Y%m%d-1.txt", rank=2)
    return project


def _connection(org, name, **fields) -> Connection:
    conn = Connection.objects.filter(organization=org, name=name).first() or Connection(organization=org, name=name)
    for key, value in fields.items():
        setattr(conn, key, value)
    conn.full_clean()
    conn.save()
    return conn


def _task(project, name, source, outbox, sql, **fields) -> Task:
    task, created = Task.objects.get_or_create(
        project=project, name=name, defaults={"source_kind": "database", "source_connection": source, **fields}
    )
    if created:
        CodeLocation.objects.create(task=task, role=CodeRole.SOURCE, location="inline", text=sql)
        Destination.objects.create(task=task, kind="folder", connection=outbox, folder="", if_exists="overwrite")
    return task
