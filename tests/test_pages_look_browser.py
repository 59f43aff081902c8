"""The pages fixed for issue 15 in a real browser, with DEBUG off as a fresh install runs: no request of
any page fails (the favicon included), times carry their zone, a paused scheduler is named beside
the planned times, a waiting retry is on the dashboard, and refused and missing pages keep the
admin's look. Screenshots go to test-artifacts/pages/ (gitignored)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from runs import services
from runs.models import Run, RunStatus, Trigger
from tests import factories
from tests.pages_support import database_connection
from tests.test_pages_browser import (  # noqa: F401 (pytest fixtures, and the marks: a transactional database, Chromium)
    Visit,
    browser_page,
    log_in,
    pytestmark,
)


@pytest.fixture
def waiting_retry(staff_runner):
    project = factories.project("Amsterdam", owner=staff_runner, cron="25 16 * * *", timezone="Europe/Amsterdam")
    task = factories.query_task(project, database_connection(), "select 1", name="orders", retry_max=2)
    now = timezone.now()
    failed = Run.objects.create(task=task, trigger=Trigger.SCHEDULE, status=RunStatus.FAILED, intended_at=now, due_at=now,
                                started_at=now, finished_at=now, error_stage="source", error="Connection refused by db:5432")
    return Run.objects.create(task=task, trigger=Trigger.RETRY, attempt=2, retry_of=failed, status=RunStatus.RETRY_SCHEDULED,
                              intended_at=now, due_at=now + timedelta(minutes=20))


def failed_requests(page) -> list[str]:
    failures: list[str] = []
    page.on("response", lambda response: failures.append(f"{response.status} {response.url}") if response.status >= 400 else None)
    return failures


def test_the_fixed_pages_in_a_browser(browser_page, live_server, superuser, staff_runner, waiting_retry):
    page, visit = browser_page, Visit(browser_page, live_server.url)
    failures = failed_requests(page)
    services.pause_scheduler(user=superuser)
    log_in(page, live_server.url, "runner", "runnerpass")

    visit.go("/admin/courier/", "fixed-dashboard-paused-with-retry")
    retries = page.inner_text("#retries")
    assert "Amsterdam/orders" in retries and re.search(r"in (19|20) min", retries) and "scheduler paused" in retries
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:25 CES?T", page.inner_text("#next-runs"))
    assert re.search(r"\((\d+) runs?, if the scheduler is resumed\)", page.inner_text("#run-plan"))

    visit.go("/admin/courier/tasks/", "fixed-task-list-zone-and-pause")
    row = page.inner_text("table.courier-table tbody tr")
    assert re.search(r"16:25 CES?T", row) and "scheduler paused" in row

    visit.go(f"/admin/courier/tasks/{waiting_retry.task_id}/", "fixed-task-details-retry-waiting")
    assert page.is_visible(".task-state .status-retry_scheduled")
    assert page.locator("#controls button[value=run]").is_enabled()  # a waiting retry does not hold Run now back

    visit.go("/admin/courier/scheduler/", "fixed-refused-page")
    assert page.inner_text("p.errornote") == "Only superusers may use the scheduler tools."
    assert page.is_visible("#nav-sidebar") and page.inner_text("#site-name") == "Courier"

    visit.go("/admin/courier/tasks/987654/", "fixed-missing-page")
    assert "Nothing is found at /admin/courier/tasks/987654/" in page.inner_text("p.errornote")

    expected = [f"403 {live_server.url}/admin/courier/scheduler/", f"404 {live_server.url}/admin/courier/tasks/987654/"]
    assert failures == expected, failures  # no favicon, style sheet or script missing on any page
