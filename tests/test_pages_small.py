"""The smaller things of issue 15.10 as a person meets them: what an empty project says, the ODBC
field's label and help, and rows of parameters and destinations put in order without typing numbers."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from projects.models import ProjectParameter
from tests import factories
from tests.pages_support import database_connection
from tests.test_pages_browser import CHROMIUM, FLAGS, Visit, log_in, sync_api

pytestmark = pytest.mark.django_db


def page(client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def test_an_empty_project_says_it_has_no_tasks_yet(client, staff_runner):
    project = factories.project("Fresh", owner=staff_runner)
    client.force_login(staff_runner)
    tasks = page(client, reverse("courier:project_detail", args=[project.pk])).split('id="tasks"')[1]
    assert "This project has no tasks yet." in tasks and "No task matches these filters." not in tasks
    assert "No tasks yet: a task is made on its project" in page(client, reverse("courier:task_list"))
    assert "No task matches these filters." in page(client, reverse("courier:task_list"), q="nothing-like-this")


def test_the_odbc_field_repeats_no_help(client, superuser):
    conn = database_connection()
    client.force_login(superuser)
    html = page(client, reverse("admin:connections_connection_change", args=[conn.pk]))
    help_text = html.split('id="id_odbc_helptext"')[1].split("</div>")[0]
    assert help_text.count("Stored encrypted") == 1, help_text


def test_the_odbc_field_is_labelled_odbc(client, superuser):
    conn = database_connection()
    client.force_login(superuser)
    html = page(client, reverse("admin:connections_connection_change", args=[conn.pk]))
    assert re.search(r'<label[^>]*for="id_odbc"[^>]*>ODBC connection string:</label>', html)


def test_rows_are_ordered_with_buttons_not_number_fields(client, staff_coder):
    project = factories.project("Ordered", owner=staff_coder)
    task = factories.query_task(project, database_connection(), "select 1", name="orders")
    client.force_login(staff_coder)
    for url in (reverse("courier:task_edit", args=[task.pk]), reverse("courier:project_edit", args=[project.pk]),
                reverse("courier:task_new", args=[project.pk])):
        html = page(client, url)
        assert not re.search(r'<input type="number" name="(param|dest)-\d+-position"', html), url
        assert re.search(r'<input type="hidden" name="param-0-position"', html), url
        assert 'data-move="up"' in html and 'data-move="down"' in html, url
        assert ">Position<" not in html, url


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="the system Chromium (/usr/bin/chromium) is not installed")
def test_moving_a_parameter_down_saves_the_new_order(live_server, staff_runner):
    project = factories.project("Ordered", owner=staff_runner)
    for position, key in enumerate(["{first}", "{second}", "{third}"]):
        ProjectParameter.objects.create(project=project, key=key, value=key.strip("{}"), position=position)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        browser_page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        log_in(browser_page, live_server.url, "runner", "runnerpass")
        Visit(browser_page, live_server.url).go(f"/admin/courier/projects/{project.pk}/edit/", "project-edit-order-buttons")
        first_row = browser_page.locator("#param-rows tr.form-row").first
        assert first_row.locator("input[name$='-key']").input_value() == "{first}"
        first_row.locator("[data-move=down]").click()
        keys = browser_page.locator("#param-rows tr.form-row input[name$='-key']").evaluate_all("inputs => inputs.map(i => i.value)")
        assert keys[:3] == ["{second}", "{first}", "{third}"]
        browser_page.click("input[name=_save]")
        browser_page.wait_for_selector("#schedule")
        browser.close()
    assert list(project.parameters.order_by("position", "id").values_list("key", flat=True)) == ["{second}", "{first}", "{third}"]
