"""Task Details in a real browser while runs happen (issue 15.3 and 15.4): the history, the files and
the buttons follow without a reload, and a second Run now says it was skipped and why.

The worker's part (runs.runner.execute) is done by the test between the page's polls.
Screenshots go to test-artifacts/pages/ (gitignored).
"""

from __future__ import annotations

import pytest

from runs import jobs
from runs.models import Run, RunStatus, Trigger
from runs.runner import execute
from runs.state import start_run
from tests import factories
from tests.test_pages_browser import (  # noqa: F401 (pytest fixtures, and the marks: a transactional database, Chromium)
    EXPECTED_CSV,
    Visit,
    browser_page,
    log_in,
    pytestmark,
    world,
)


@pytest.fixture
def task(staff_runner, world):
    project = factories.project("Live", owner=staff_runner, timezone="Europe/Amsterdam")
    made = factories.query_task(project, world["db"], "SELECT id, customer FROM orders ORDER BY id", name="orders",
                                output_name="orders_export")
    factories.destination(made, world["outbox"])
    return made


def run_button(page):
    return page.locator("#controls button[value=run]")


def test_run_now_then_history_files_and_buttons_update_without_a_reload(browser_page, live_server, task, world):
    page, visit = browser_page, Visit(browser_page, live_server.url)
    log_in(page, live_server.url, "runner", "runnerpass")
    visit.go(f"/admin/courier/tasks/{task.pk}/", "live-task-details-before-run")
    assert "This task has not run yet." in page.inner_text("#run-history")
    run_button(page).click()
    page.wait_for_selector("text=Started run")
    run = task.runs.get()
    assert run_button(page).is_disabled()  # queued: a second start would only be skipped
    assert f"Run {run.pk} is queued" in run_button(page).get_attribute("title")
    page.evaluate("window.courierSamePage = true")
    execute(run.pk)  # the worker's part
    page.wait_for_function("document.querySelector('#run-history .status-succeeded') !== null")
    page.wait_for_function("document.getElementById('file-history').textContent.includes('orders_export.csv')")
    page.wait_for_function("!document.querySelector('#controls button[value=run]').disabled")
    assert page.evaluate("window.courierSamePage") is True  # all of it in place, never reloaded
    assert page.is_visible(".task-state .status-succeeded")
    assert "[finish] Succeeded" in page.inner_text("#live-log")
    assert (world["outbox_path"] / "orders_export.csv").read_bytes() == EXPECTED_CSV
    visit.shot("live-task-details-after-run")


def test_run_now_twice_runs_once_and_says_the_second_was_skipped_and_why(browser_page, live_server, task):
    first, visit = browser_page, Visit(browser_page, live_server.url)
    log_in(first, live_server.url, "runner", "runnerpass")
    url = f"{live_server.url}/admin/courier/tasks/{task.pk}/"
    second = first.context.new_page()
    second.set_default_timeout(15_000)
    # A second tab opened earlier, that has not yet caught up with the first one's run.
    second.route("**/live/*", lambda route: route.abort())
    second.goto(url)
    first.goto(url)
    run_button(first).click()
    first.wait_for_selector("text=Started run")
    running = task.runs.get()

    run_button(second).click()
    message = second.wait_for_selector(".messagelist .warning").inner_text()
    skipped = task.runs.exclude(pk=running.pk).get()
    assert (running.status, skipped.status) == (RunStatus.QUEUED, RunStatus.SKIPPED)
    assert f"previous run still active (run {running.pk} of Live/orders, queued)" in message
    assert f"recorded as skipped run {skipped.pk}" in message
    # The page keeps following the run that goes on, and Run now waits for it.
    assert second.inner_text("#live-log-title") == f"Log of run {running.pk}"
    assert second.is_visible(".task-state .status-queued")
    assert run_button(second).is_disabled()
    Visit(second, live_server.url).shot("live-task-details-second-run-skipped")

    second.unroute("**/live/*")
    execute(running.pk)
    second.wait_for_function("document.querySelector('.task-state .status-succeeded') !== null")
    second.wait_for_function("document.querySelector('#run-history .status-skipped') !== null")
    assert second.inner_text("#live-log-title") == f"Log of run {running.pk}"
    assert Run.objects.filter(task=task).exclude(status=RunStatus.SKIPPED).count() == 1
    visit.shot("live-task-details-first-run-done")
    second.close()


def test_a_resend_shows_queued_then_sent_in_the_file_history_without_a_reload(browser_page, live_server, task, world):
    page, visit = browser_page, Visit(browser_page, live_server.url)
    run = execute(start_run(task, Trigger.MANUAL).run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    (world["outbox_path"] / "orders_export.csv").unlink()
    log_in(page, live_server.url, "runner", "runnerpass")
    visit.go(f"/admin/courier/tasks/{task.pk}/", "live-task-details-before-resend")
    page.evaluate("window.courierSamePage = true")
    page.click("#file-history button[value=resend]")
    page.wait_for_selector("text=Resent orders_export.csv: queued for")
    assert page.is_visible("#file-history .status-queued")
    page.evaluate("window.courierSamePage = true")
    [queued] = run.files.get().deliveries.filter(resent_by__isnull=False)
    assert jobs.send_resend(queued.pk) == "sent"  # the worker's part
    page.wait_for_function("document.querySelector('#file-history .status-sent') !== null")
    assert page.evaluate("window.courierSamePage") is True  # followed in place, never reloaded
    assert (world["outbox_path"] / "orders_export.csv").read_bytes() == EXPECTED_CSV
    visit.shot("live-task-details-after-resend")
