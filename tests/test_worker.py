"""A run started from the admin's service goes through the django-q2 ORM broker to a real worker process."""

from __future__ import annotations

import time

import pytest
from django_q.brokers import get_broker
from django_q.cluster import Cluster

from runs.models import Run, RunStatus
from runs.services import run_now
from tests import factories


@pytest.mark.django_db(transaction=True)
def test_a_queued_run_is_executed_by_a_django_q2_worker(sqlite_odbc, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = factories.query_task(factories.project(), source, "select 'from the worker' as greeting", output_name="worker.csv")
    factories.destination(task, factories.connection("folder", folder=str(outbox)))

    broker = get_broker()
    cluster = Cluster(broker)
    cluster.start()
    try:
        run = run_now(task)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                break
            time.sleep(0.2)
    finally:
        cluster.stop()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (outbox / "worker.csv").read_text() == "greeting\nfrom the worker\n"
    assert ":" in run.worker
    assert Run.objects.count() == 1
