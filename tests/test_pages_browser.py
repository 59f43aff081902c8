"""The pages in a real browser (Playwright + the system Chromium, TESTING.md §11).

A staff user creates a project and a task through the forms, runs it, watches
the log fill in without a reload, downloads the file, filters the task list by
clicking a name cloud, and never sees a connection secret. Every page is saved
as a screenshot under test-artifacts/pages/ (gitignored).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from projects.models import Project
from runs.models import Run, RunLog, RunStatus, SiteState, Stage
from runs.runner import execute
from runs.state import create_run
from tasks.models import Task
from tests import factories

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "pages"
DB_SECRET = "PWD=browser-Secret-Db-Pwd"
SFTP_SECRET = "browser-Secret-Sftp-Pass"
PARAM_SECRET = "browser-Secret-Param"
EXPECTED_CSV = b"id,customer\n1,Ann\n2,Bob\n"
# A processing script's output is logged up to 10,000 lines (runs/pipeline/processing.py).
LONGEST_LOG = 10_000

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="the system Chromium (/usr/bin/chromium) is not installed"),
]


@pytest.fixture
def browser_page(monkeypatch, tmp_path):
    # Playwright's sync API runs an event loop in this thread; the test still uses the ORM between steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def world(sqlite_odbc, tmp_path):
    """A source database, an outbox folder, and connections whose secrets must never be shown."""
    with sqlite3.connect(sqlite_odbc.name) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(1, "Ann"), (2, "Bob")])
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    return {
        "db": factories.connection("database", name="shop", dialect="sqlite", odbc=f"{sqlite_odbc.odbc}{DB_SECRET};"),
        "outbox": factories.connection("folder", name="outbox", folder=str(outbox)),
        "sftp": factories.connection("sftp", name="vendor", host="sftp.example.test", username="u", password=SFTP_SECRET),
        "outbox_path": outbox,
    }


class Visit:
    """Goes to pages, saves a screenshot of each and checks that no secret is on it."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        html = self.page.content()
        for secret in (DB_SECRET, SFTP_SECRET, PARAM_SECRET, "browser-Secret"):
            assert secret not in html, f"{secret} is shown on {self.page.url}"

    def go(self, path: str, name: str) -> None:
        self.page.goto(self.base + path)
        self.shot(name)


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def create_project(page, visit: Visit) -> Project:
    visit.go("/admin/courier/projects/new/", "project-new")
    page.fill("#id_name", "Browser")
    page.fill("#id_cron", "0 6 * * 1-5")
    page.fill("#id_param-0-key", "@token")
    page.fill("#id_param-0-entered_value", PARAM_SECRET)
    page.check("#id_param-0-sensitive")
    page.click("input[name=_save]")
    page.wait_for_selector("#schedule")
    visit.shot("project-detail")
    return Project.objects.get(name="Browser")


def create_task(page, visit: Visit, project: Project, world) -> Task:
    page.click("text=New task")
    page.wait_for_selector("#task_form")
    page.fill("#id_name", "orders")
    page.select_option("#id_source_kind", "database")
    page.select_option("#id_source_connection", str(world["db"].pk))
    # Only the fields of a database source are visible; the file-source path is hidden.
    assert page.is_visible("#id_source_headers") and not page.is_visible("#id_source_path")
    page.evaluate("sql => document.querySelector('.CodeMirror').CodeMirror.setValue(sql)",
                  "SELECT id, customer\nFROM orders\nORDER BY id")
    assert page.is_visible(".CodeMirror-linenumber")
    page.select_option("#id_output_type", "csv")
    page.fill("#id_output_name", "orders_export")
    page.select_option("#id_dest-0-kind", "folder")
    # The destination's connection list offers only local-folder connections now.
    assert page.locator("#id_dest-0-connection option:not([hidden])[data-kind]").count() == 1
    page.select_option("#id_dest-0-connection", str(world["outbox"].pk))
    visit.shot("task-form")
    page.click("input[name=_save]")
    page.wait_for_selector("#controls")
    return Task.objects.get(project=project, name="orders")


def run_and_watch_the_log(page, visit: Visit, task: Task) -> Run:
    page.click("#controls button[value=run]")
    page.wait_for_selector("#live-log")
    run = task.runs.get()
    page.wait_for_function("document.getElementById('live-log-note').textContent.includes('queued')")
    page.evaluate("window.courierSamePage = true")
    # The worker's part, done here: the page keeps polling while the run writes its log.
    execute(run.pk)
    page.wait_for_function("document.getElementById('live-log').dataset.complete === 'true'")
    assert page.evaluate("window.courierSamePage") is True  # updated in place, never reloaded
    log = page.inner_text("#live-log")
    assert "[claim]" in log and "[finish] Succeeded" in log
    assert page.is_visible("#live-status .status-succeeded")
    visit.shot("task-detail-after-run")
    return run


def download_the_file(page, visit: Visit, task: Task) -> None:
    visit.go(f"/admin/courier/tasks/{task.pk}/", "task-detail")
    with page.expect_download() as info:
        page.click("#files a:text('Download')")
    assert info.value.suggested_filename == "orders_export.csv"
    assert Path(info.value.path()).read_bytes() == EXPECTED_CSV


def filter_by_cloud(page, visit: Visit, project: Project) -> None:
    visit.go("/admin/courier/tasks/", "task-list")
    page.click(f".name-cloud[data-param=project] a:text('{project.name}')")
    page.wait_for_selector(".name-cloud[data-param=project] a.selected")
    assert f"project={project.pk}" in page.url
    listed = page.locator("table.courier-table tbody tr td:first-child").all_inner_texts()
    assert listed == ["orders"]
    visit.shot("task-list-filtered-by-cloud")


def test_a_staff_user_creates_runs_downloads_and_filters(browser_page, live_server, staff_runner, world):
    other = factories.project("Other", owner=staff_runner)
    factories.query_task(other, world["db"], "select 1", name="elsewhere")
    page, visit = browser_page, Visit(browser_page, live_server.url)
    log_in(page, live_server.url, "runner", "runnerpass")
    visit.shot("admin-index")
    project = create_project(page, visit)
    assert project.parameters.get().secret_value == PARAM_SECRET
    task = create_task(page, visit, project, world)
    run_and_watch_the_log(page, visit, task)
    assert (world["outbox_path"] / "orders_export.csv").read_bytes() == EXPECTED_CSV
    download_the_file(page, visit, task)
    filter_by_cloud(page, visit, project)
    for path, name in [
        ("/admin/courier/", "dashboard"), ("/admin/courier/tasks/mine/", "my-tasks"),
        ("/admin/courier/projects/", "project-list"), ("/admin/courier/projects/mine/", "my-projects"),
        (f"/admin/courier/projects/{project.pk}/", "project-detail-with-task"),
        (f"/admin/courier/projects/{project.pk}/edit/", "project-edit"),
        (f"/admin/courier/tasks/{task.pk}/edit/", "task-edit"),
        (f"/admin/courier/runs/{task.runs.get().pk}/log/", "run-log-json"),
    ]:
        visit.go(path, name)


def test_a_superuser_sees_the_scheduler_tools_and_delete_confirmations(browser_page, live_server, superuser, world):
    project = factories.project("Nightly", owner=superuser, cron="*/30 * * * *")
    task = factories.query_task(project, world["db"], "select 1", name="orders")
    page, visit = browser_page, Visit(browser_page, live_server.url)
    log_in(page, live_server.url, "root", "rootpass")
    visit.go("/admin/courier/scheduler/", "scheduler-tools")
    page.once("dialog", lambda dialog: dialog.accept())  # the button asks for confirmation first
    page.click("#state button[value=pause]")
    page.wait_for_selector("text=Paused the scheduler")
    assert SiteState.get().paused
    visit.shot("scheduler-tools-paused")
    for path, name in [
        (f"/admin/courier/tasks/{task.pk}/delete/", "task-delete-confirmation"),
        (f"/admin/courier/projects/{project.pk}/delete/", "project-delete-confirmation"),
        ("/admin/courier/", "dashboard-superuser"),
    ]:
        visit.go(path, name)
    assert (ARTIFACTS / "scheduler-tools.png").exists()


def test_the_run_admin_shows_the_end_of_a_long_log_and_task_details_all_of_it(browser_page, live_server, superuser, world):
    task = factories.query_task(factories.project("Chatty", owner=superuser), world["db"], "select 1", name="chatty")
    run = create_run(task, "manual")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now())
    RunLog.objects.bulk_create(RunLog(run=run, stage=Stage.PROCESSING, message=f"script line {n:05d}") for n in range(1, LONGEST_LOG + 1))
    page, visit = browser_page, Visit(browser_page, live_server.url)
    log_in(page, live_server.url, "root", "rootpass")
    visit.go(f"/admin/runs/run/{run.pk}/", "run-admin-long-log")
    assert page.locator("#log_lines-group tbody tr.has_original").count() == 200
    page.click("text=the whole log on Task Details")
    page.wait_for_function("document.getElementById('live-log').dataset.complete === 'true'", timeout=60_000)
    lines = page.locator("#live-log .log-line")
    assert lines.count() == LONGEST_LOG
    assert "script line 00001" in lines.first.inner_text() and f"script line {LONGEST_LOG:05d}" in lines.last.inner_text()
    visit.shot("task-detail-whole-long-log")
