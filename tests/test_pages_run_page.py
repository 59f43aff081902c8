"""The run's admin page (issue 15.8): its stored-file link downloads the file, and a run with long
names, hashes and log lines fits the window instead of widening the page (Task Details' files too)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from runs.models import Run, RunFile, RunLog, RunStatus, Stage, Trigger
from runs.state import create_run
from tests import factories
from tests.pages_support import database_connection
from tests.test_pages_browser import FLAGS, Visit, log_in, sync_api

CHROMIUM = Path("/usr/bin/chromium")
CONTENT = b"id,customer\n1,Ann\n"
LONG_NAME = "customer_orders_with_every_line_item_and_the_shipping_address_of_each_" + "x" * 60 + ".csv"


@pytest.fixture
def finished_run(superuser):
    task = factories.query_task(factories.project("Wide", owner=superuser), database_connection(), "select 1", name="orders")
    run = create_run(task, Trigger.MANUAL)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now())
    record = RunFile(run=run, name=LONG_NAME, size=len(CONTENT), rows=1, md5=hashlib.md5(CONTENT).hexdigest(),
                     sha256=hashlib.sha256(CONTENT).hexdigest())
    record.stored.save(LONG_NAME, ContentFile(CONTENT), save=True)
    RunLog.objects.create(run=run, stage=Stage.DELIVERY, message="Uploaded to /srv/" + "/".join(["deeply-nested-folder"] * 12))
    return run


@pytest.mark.django_db
def test_the_stored_file_link_on_the_run_page_downloads_the_file(client, superuser, finished_run):
    client.force_login(superuser)
    page = client.get(f"/admin/runs/run/{finished_run.pk}/change/").content.decode()
    cell = page.split('class="field-stored_at"')[1].split("</td>")[0]
    link = re.search(r'href="([^"]+)"', cell).group(1)
    response = client.get(link)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CONTENT


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="the system Chromium (/usr/bin/chromium) is not installed")
def test_the_run_page_and_task_details_fit_the_window(live_server, finished_run):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        visit = Visit(page, live_server.url)
        log_in(page, live_server.url, "root", "rootpass")
        for path, name in [(f"/admin/runs/run/{finished_run.pk}/change/", "run-page-long-names"),
                           (f"/admin/courier/tasks/{finished_run.task_id}/", "task-details-long-names")]:
            visit.go(path, name)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, f"{path} is {width} px wide in a 1280 px window"
        browser.close()
