"""The demo data (manage.py load_demo): its warehouse connection is read only, and its tasks still run."""

from __future__ import annotations

import io
import sqlite3

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection as django_db

from connections.models import Connection
from projects.models import Project
from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tests import factories


def run(task):
    made = create_run(task, "manual")
    execute(made.pk)
    made.refresh_from_db()
    return made


@pytest.mark.django_db(transaction=True)  # committed rows, so the attack below has something to reach
def test_the_demo_warehouse_is_read_only_and_the_demo_tasks_still_run(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("load_demo", stdout=io.StringIO())
    warehouse = Connection.objects.get(organization__name="Demo", name="warehouse")
    assert (warehouse.dialect, warehouse.read_only) == ("sqlite", True)

    project = Project.objects.get(name="Demo")
    runs = {task.name: run(task) for task in project.tasks.all()}
    assert {name: (r.status, r.rows) for name, r in runs.items()} == {
        "orders": (RunStatus.SUCCEEDED, 5000), "orders-by-country": (RunStatus.SUCCEEDED, 6),
    }, [r.error for r in runs.values()]
    assert len(list((tmp_path / "outbox").iterdir())) == 2

    # The attacks of issue 13 on the demo connection: write to the warehouse, or reach Courier's own database.
    tamper = factories.query_task(project, warehouse, "UPDATE orders SET amount = '0.00'\nGO\nSELECT 1 AS one", name="tamper")
    assert "tried to change data, but the connection is read only" in run(tamper).error
    with sqlite3.connect(tmp_path / "demo" / "warehouse.sqlite3") as demo:
        assert demo.execute("SELECT count(*) FROM orders WHERE amount = '0.00'").fetchone() == (0,)
    if django_db.vendor == "sqlite":
        own = django_db.settings_dict["NAME"]
        escalate = factories.query_task(project, warehouse, f"ATTACH DATABASE '{own}' AS c\nGO\n"
                                        f"UPDATE c.auth_user SET is_superuser = 1\nGO\nSELECT 1 AS one", name="escalate")
        assert "SQLite connections may not run ATTACH statements" in run(escalate).error
        assert not get_user_model().objects.filter(is_superuser=True).exists()
