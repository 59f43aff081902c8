"""Output file history: download a stored file, resend it to the current destinations, prune by retention."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from runs.history import prune
from runs.models import Delivery, DeliveryStatus, Run, RunFile, RunStatus, Trigger
from runs.resend import ResendError, queue_resend
from tests.delivery_support import ORDERS_CSV, folder_destination, log_text, orders_task, resend, run_task, stored_orders

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(sqlite_odbc, tmp_path) -> RunFile:
    return stored_orders(sqlite_odbc, tmp_path / "first")


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------

def test_a_viewer_downloads_the_stored_bytes(client, staff_viewer, stored):
    client.force_login(staff_viewer)
    response = client.get(reverse("courier:runfile_download", args=[stored.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == ORDERS_CSV
    assert response["Content-Disposition"] == 'attachment; filename="orders.csv"'


def test_download_needs_a_login_and_the_view_runs_permission(client, django_user_model, stored):
    url = reverse("courier:runfile_download", args=[stored.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    nobody = django_user_model.objects.create_user("staffer", password="x", is_staff=True)
    client.force_login(nobody)
    assert client.get(url).status_code == 403


def test_a_pruned_file_is_not_found(client, superuser, stored):
    stored.stored.storage.delete(stored.stored.name)
    client.force_login(superuser)
    assert client.get(reverse("courier:runfile_download", args=[stored.pk])).status_code == 404


# --------------------------------------------------------------------------
# Resend
# --------------------------------------------------------------------------

def test_resend_goes_to_the_current_destinations_as_a_new_audited_delivery(stored, staff_runner, tmp_path):
    task = stored.run.task
    task.destinations.all().delete()
    folder_destination(task, tmp_path / "now")

    deliveries = resend(stored, staff_runner)

    assert (tmp_path / "now" / "orders.csv").read_bytes() == ORDERS_CSV
    assert [(d.status, d.resent_by, d.run_id, d.file_id) for d in deliveries] == [(DeliveryStatus.SENT, staff_runner, stored.run_id, stored.pk)]
    assert Delivery.objects.filter(file=stored).count() == 2  # the original one is kept
    queued, ended = LogEntry.objects.filter(object_id=str(task.pk)).order_by("id")
    assert queued.user == staff_runner and "Resent orders.csv" in queued.change_message and "queued for" in queued.change_message
    assert ended.user == staff_runner
    assert ended.change_message == f"Resend of orders.csv (run {stored.run_id}) ended — {deliveries[0].target}: sent"
    assert "runner resends orders.csv" in log_text(stored.run)


def test_resend_follows_each_destinations_rules(stored, staff_runner, tmp_path):
    # The first destination still has the file and is set to fail rather than overwrite.
    deliveries = resend(stored, staff_runner)
    assert deliveries[0].status == DeliveryStatus.FAILED and "already exists" in deliveries[0].error


def test_resend_is_refused_without_the_run_permission_or_destinations(stored, staff_viewer, staff_runner):
    with pytest.raises(PermissionDenied):
        queue_resend(stored, staff_viewer)
    stored.run.task.destinations.all().delete()
    with pytest.raises(ResendError, match="no destinations"):
        queue_resend(stored, staff_runner)


# --------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------

def _age(run: Run, days: int) -> None:
    then = timezone.now() - timedelta(days=days)
    Run.objects.filter(pk=run.pk).update(queued_at=then, intended_at=then, due_at=then, started_at=then, finished_at=then)


@pytest.fixture
def private_storage(settings, tmp_path):
    """A file storage of this test's own, so folders left by other tests do not count."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "storage")}}}
    return tmp_path / "storage"


@pytest.fixture
def history(sqlite_odbc, tmp_path, private_storage):
    """Six runs of one task, each with a stored file: five old ones (100..60 days) and one of today."""
    task = orders_task(sqlite_odbc, output_name="orders_%H%M%S%f.csv")
    runs = [run_task(task) for _ in range(6)]
    for run, days in zip(runs, [100, 90, 80, 70, 60]):
        _age(run, days)
    return runs


def test_prune_deletes_old_runs_and_files_but_keeps_the_newest_per_task(history, private_storage):
    paths = {run.pk: Path(run.files.get().stored.path) for run in history}
    report = prune(days=65, keep=2)

    kept = set(Run.objects.values_list("pk", flat=True))
    # 100, 90, 80 and 70 days are beyond retention; the 60-day run is young enough; the newest two stay anyway.
    assert kept == {history[4].pk, history[5].pk}
    assert (report.runs, report.files) == (4, 4)
    assert all(not paths[run.pk].exists() for run in history[:4])
    assert all(not paths[run.pk].parent.exists() for run in history[:4])  # empty run folders tidied
    assert all(private_storage in paths[run.pk].parents for run in history)
    assert paths[history[4].pk].exists() and paths[history[5].pk].exists()
    assert not Delivery.objects.filter(run_id__in=[r.pk for r in history[:4]]).exists()


def test_keep_protects_old_runs_when_nothing_newer_exists(history):
    for run in history[4:]:
        run.delete()
    prune(days=30, keep=3)
    assert sorted(Run.objects.values_list("pk", flat=True)) == [history[1].pk, history[2].pk, history[3].pk]


def test_a_waiting_retry_keeps_the_run_it_retries(history):
    old = history[0]
    Run.objects.create(task=old.task, trigger=Trigger.RETRY, status=RunStatus.RETRY_SCHEDULED, retry_of=old, attempt=2,
                       intended_at=old.intended_at, due_at=timezone.now())
    prune(days=30, keep=0)
    assert Run.objects.filter(pk=old.pk).exists()
    assert not Run.objects.filter(pk=history[1].pk).exists()


def test_the_command_uses_the_settings_and_refuses_bad_input(history, settings):
    settings.COURIER_RETENTION_DAYS, settings.COURIER_RETENTION_KEEP = 75, 1
    out = StringIO()
    call_command("prune_history", "--dry-run", stdout=out)
    assert "Would delete 3 run(s) and 3 stored file(s)" in out.getvalue()
    assert Run.objects.count() == 6
    call_command("prune_history", "--days", "85", "--keep", "0", stdout=out)
    assert "Deleted 2 run(s)" in out.getvalue()
    assert Run.objects.count() == 4
    with pytest.raises(CommandError, match="negative"):
        call_command("prune_history", "--days", "-1")
