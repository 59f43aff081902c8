"""One UI per object: tasks and projects live on Courier's pages; the admin's pages for them lead there.

- The admin's task and project list, add, change and delete pages answer with
  Courier's page that does the same, to whoever the admin lets in (others
  are refused as before: tests/test_permissions.py has the whole matrix).
- Every link to a task — the run admin's, the dashboard's, the lists', the
  admin's recent actions — ends on Task Details.
- The sidebar lists each page once; django-q2's models sit under one "Queue
  internals" heading, for superusers only.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone

from runs import state
from runs.models import RunStatus, Trigger
from tasks.models import Task
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(staff_runner, tmp_path):
    project = factories.project("Nightly", owner=staff_runner, cron="0 6 * * *")
    source = factories.connection("database", name="warehouse", dialect="sqlite", odbc=f"Driver={{SQLite3}};Database={tmp_path}/x;")
    made = factories.query_task(project, source, "select 1 as one", name="orders")
    now = timezone.now()
    state.create_run(made, Trigger.MANUAL, status=RunStatus.FAILED, intended_at=now, due_at=now,
                     started_at=now, finished_at=now + timedelta(seconds=1), error="boom")
    LogEntry.objects.log_actions(staff_runner.pk, [made, project], CHANGE, change_message="Changed for the test.")
    return made


def sidebar(html: str) -> dict[str, list[tuple[str, str]]]:
    """The sidebar's sections: heading → [(entry, link)]."""
    nav = html.split('<nav class="sticky" id="nav-sidebar"', 1)[1].split("</nav>", 1)[0]
    sections = {}
    for block in re.split(r"<caption>", nav)[1:]:
        heading = re.sub(r"<[^>]+>", "", block.split("</caption>", 1)[0]).strip()
        sections[heading] = [(re.sub(r"<[^>]+>", "", label).strip(), href)
                             for href, label in re.findall(r'<th scope="row"[^>]*>\s*<a href="([^"]+)"[^>]*>(.*?)</a>', block, re.S)]
    return sections


# --------------------------------------------------------------------------
# The admin's task and project pages lead to Courier's
# --------------------------------------------------------------------------


def test_the_admin_task_pages_lead_to_courier_pages(client, staff_runner, task):
    client.force_login(staff_runner)
    expected = {
        reverse("admin:tasks_task_changelist"): reverse("courier:task_list"),
        reverse("admin:tasks_task_change", args=[task.pk]): reverse("courier:task_detail", args=[task.pk]),
        reverse("admin:tasks_task_add"): reverse("courier:project_list"),
        reverse("admin:tasks_task_add") + f"?project={task.project_id}": reverse("courier:task_new", args=[task.project_id]),
    }
    for admin_url, courier_url in expected.items():
        response = client.get(admin_url, follow=True)
        assert [url for url, _ in response.redirect_chain] == [courier_url], admin_url
        assert response.status_code == 200
    page = client.get(reverse("admin:tasks_task_add"), follow=True).content.decode()
    assert "A task is made inside its project" in page


def test_the_admin_project_pages_lead_to_courier_pages(client, superuser, task):
    client.force_login(superuser)
    project = task.project
    expected = {
        reverse("admin:projects_project_changelist"): reverse("courier:project_list"),
        reverse("admin:projects_project_change", args=[project.pk]): reverse("courier:project_detail", args=[project.pk]),
        reverse("admin:projects_project_add"): reverse("courier:project_new"),
        reverse("admin:projects_project_delete", args=[project.pk]): reverse("courier:project_delete", args=[project.pk]),
        reverse("admin:tasks_task_delete", args=[task.pk]): reverse("courier:task_delete", args=[task.pk]),
        "/admin/projects/": reverse("courier:project_list"),
        "/admin/tasks/": reverse("courier:task_list"),
    }
    for admin_url, courier_url in expected.items():
        response = client.get(admin_url, follow=True)
        assert [url for url, _ in response.redirect_chain] == [courier_url], admin_url
        assert response.status_code == 200


def test_a_post_to_the_admin_deletes_nothing_and_asks_on_courier_page(client, superuser, task):
    client.force_login(superuser)
    response = client.post(reverse("admin:tasks_task_delete", args=[task.pk]), {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("courier:task_delete", args=[task.pk])
    assert "Delete task orders?" in response.content.decode()
    assert Task.objects.filter(pk=task.pk).exists()


def test_who_may_not_open_the_admin_page_is_still_refused(client, staff_viewer, task):
    client.force_login(staff_viewer)
    assert client.get(reverse("admin:tasks_task_change", args=[task.pk])).status_code == 302  # may view: led on
    assert client.get(reverse("admin:tasks_task_add")).status_code == 403
    assert client.get(reverse("admin:tasks_task_delete", args=[task.pk])).status_code == 403
    assert client.get(reverse("admin:projects_project_add")).status_code == 403


def test_the_admin_history_of_a_task_stays_and_its_links_lead_to_courier_pages(client, staff_runner, task):
    client.force_login(staff_runner)
    page = client.get(reverse("admin:tasks_task_history", args=[task.pk])).content.decode()
    assert "Changed for the test." in page
    crumbs = re.findall(r'<a href="([^"]+)"', page.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0])
    landed = {client.get(href, follow=True).redirect_chain[-1][0] for href in crumbs if href != "/admin/"}
    assert landed == {reverse("courier:task_list"), reverse("courier:task_detail", args=[task.pk])}


# --------------------------------------------------------------------------
# Every link to a task goes to Task Details
# --------------------------------------------------------------------------

TASK_LINK = re.compile(r'href="(/admin/(?:tasks/task/\d+/[^"]*|courier/tasks/\d+/)[^"]*)"')


def task_links(html: str) -> set[str]:
    return {href.replace("&amp;", "&") for href in TASK_LINK.findall(html)}


def test_every_link_to_a_task_ends_on_task_details(client, superuser, task):
    client.force_login(superuser)
    LogEntry.objects.log_actions(superuser.pk, [task], CHANGE, change_message="Looked at it.")  # the index shows one's own
    run = task.runs.get()
    detail = reverse("courier:task_detail", args=[task.pk])
    pages = {
        "the run's admin page": reverse("admin:runs_run_change", args=[run.pk]),
        "the run admin's list": reverse("admin:runs_run_changelist"),
        "the admin index (recent actions)": "/admin/",
        "the dashboard": reverse("courier:dashboard"),
        "All tasks": reverse("courier:task_list"),
        "the project's page": reverse("courier:project_detail", args=[task.project_id]),
    }
    for where, url in pages.items():
        links = task_links(client.get(url).content.decode())
        assert links, f"{where} links to no task"
        for href in links:
            landed = client.get(href, follow=True)
            assert landed.status_code == 200 and landed.request["PATH_INFO"] == detail, f"{where}: {href}"
    run_page = client.get(reverse("admin:runs_run_change", args=[run.pk])).content.decode()
    assert f'href="{detail}"' in run_page  # straight there, not through the admin's task page


# --------------------------------------------------------------------------
# The sidebar
# --------------------------------------------------------------------------


def test_the_sidebar_lists_each_page_once_and_the_queue_internals_under_one_heading(client, superuser, task):
    client.force_login(superuser)
    sections = sidebar(client.get(reverse("courier:dashboard")).content.decode())
    links = [href for entries in sections.values() for _, href in entries]
    assert len(links) == len(set(links))
    assert [label for label, _ in sections["Courier"]] == ["Dashboard", "All tasks", "My tasks", "All projects", "My projects", "Scheduler tools"]
    for admin_list in ("/admin/tasks/task/", "/admin/projects/project/"):
        assert admin_list not in links  # Courier's own lists stand for them
    assert "Tasks" not in sections and "Projects" not in sections
    assert sorted(label for label, _ in sections["Queue internals"]) == ["Failed tasks", "Queued tasks", "Scheduled tasks", "Successful tasks"]
    assert all(href.startswith("/admin/django_q/") for _, href in sections["Queue internals"])
    assert not [href for heading, entries in sections.items() if heading != "Queue internals"
                for _, href in entries if href.startswith("/admin/django_q/")]


def test_staff_see_no_queue_internals_in_the_sidebar(client, staff_runner, task):
    client.force_login(staff_runner)
    for url in ("/admin/", reverse("courier:dashboard")):
        html = client.get(url).content.decode()
        assert "Queue internals" not in html and "/admin/django_q/" not in html
    sections = sidebar(client.get(reverse("courier:dashboard")).content.decode())
    assert list(sections) == ["Courier", "Runs"]
