"""All Tasks, My Tasks, All/My Projects: tables, filters, name clouds, and a query count that does not grow."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects.models import Project
from runs.models import RunStatus
from tasks.models import Task
from tests.pages_support import build_world

pytestmark = pytest.mark.django_db


def names_in(html: str) -> set[str]:
    return set(re.findall(r">(task-\d{4})</a>", html))


def cloud(html: str, title: str) -> dict[str, tuple[int, bool]]:
    """label → (count, selected) of one name cloud on the page."""
    block = html.split(f"<h3>{title}")[1].split("</div>")[0]
    entries = re.findall(r'<a href="[^"]*" class="cloud-\d( selected)?"[^>]*>([^<]+)<span class="cloud-count">(\d+)</span>', block)
    return {label: (int(count), bool(selected)) for selected, label, count in entries}


def test_all_tasks_lists_every_task_with_last_status_in_the_admin_frame(client, staff_viewer):
    tasks = build_world(8, 2)
    client.force_login(staff_viewer)
    response = client.get(reverse("courier:task_list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert names_in(html) == {t.name for t in tasks}
    # The admin's header, breadcrumbs and sidebar, with the Courier section in it.
    assert 'id="site-name"' in html and 'class="breadcrumbs"' in html and 'id="nav-sidebar"' in html
    assert 'href="/admin/courier/tasks/mine/"' in html
    latest = tasks[0].runs.order_by("-id").first()
    row = html.split(f">{tasks[0].name}</a>")[1].split("</tr>")[0]
    assert f"status-{latest.status}" in row


def test_filters_by_text_project_owner_status_source_and_enabled(client, staff_viewer):
    tasks = build_world(20, 2)
    client.force_login(staff_viewer)
    project = tasks[3].project

    def listed(**params) -> set[str]:
        return names_in(client.get(reverse("courier:task_list"), params).content.decode())

    assert listed(q="task-0003") == {"task-0003"}
    assert listed(project=project.pk) == {t.name for t in tasks if t.project_id == project.pk}
    assert listed(owner=project.owner_id) == {t.name for t in tasks if t.project.owner_id == project.owner_id}
    failed = {t.name for t in tasks if t.runs.order_by("-id").first().status == RunStatus.FAILED}
    assert failed and listed(status="failed") == failed
    assert listed(enabled="false") == {t.name for t in tasks if not t.enabled}
    assert listed(source="sftp") == set()
    Task.objects.filter(pk=tasks[0].pk).update(source_kind="python", source_connection=None)
    assert listed(source="python") == {tasks[0].name}
    never = Task.objects.create(project=project, name="task-9999", source_kind="python")
    assert listed(status="never") == {never.name}


def test_the_search_boxes_want_every_word_in_a_name_or_the_other_field(client, staff_viewer):
    tasks = build_world(12, 1, projects=3)
    Project.objects.filter(pk=tasks[1].project_id).update(description="Nightly ledger for Acme")
    client.force_login(staff_viewer)

    def tasks_for(q: str) -> set[str]:
        return names_in(client.get(reverse("courier:task_list"), {"q": q}).content.decode())

    def projects_for(q: str) -> set[str]:
        return set(re.findall(r">(Project \d{2})</a>", client.get(reverse("courier:project_list"), {"q": q}).content.decode()))

    assert tasks[5].project.name == "Project 02"
    assert tasks_for("PROJECT 02 task-0005") == {"task-0005"}  # every word, in the task's or its project's name
    assert tasks_for("project 01 task-0005") == set()
    assert tasks_for("task-001") == {"task-0010", "task-0011"}
    assert projects_for("acme LEDGER") == {"Project 01"}  # words of the description, any case
    assert projects_for("project 02") == {"Project 02"} and projects_for("acme 02") == set()


def test_clouds_count_with_the_other_filters_and_mark_the_selected_entry(client, staff_viewer):
    tasks = build_world(24, 1, projects=4, owner_count=2)
    client.force_login(staff_viewer)
    project = tasks[0].project
    owner = project.owner
    html = client.get(reverse("courier:task_list")).content.decode()
    assert cloud(html, "Projects")[project.name] == (6, False)
    assert cloud(html, "Owners")[owner.username] == (12, False)

    # Filtering by project: the project cloud still shows every project (its own filter is left out),
    # the owner cloud counts only that project's tasks.
    html = client.get(reverse("courier:task_list"), {"project": project.pk}).content.decode()
    projects = cloud(html, "Projects")
    assert projects[project.name] == (6, True)
    assert len(projects) == 4
    assert cloud(html, "Owners") == {owner.username: (6, False)}

    # Other filters (here: enabled) change the counts of both clouds.
    html = client.get(reverse("courier:task_list"), {"enabled": "true"}).content.decode()
    enabled_here = sum(1 for t in tasks if t.project_id == project.pk and t.enabled)
    assert cloud(html, "Projects")[project.name] == (enabled_here, False)


def test_a_cloud_entry_links_to_its_filter_and_the_selected_one_clears_it(client, staff_viewer):
    tasks = build_world(6, 1, projects=2)
    client.force_login(staff_viewer)
    project = tasks[0].project
    html = client.get(reverse("courier:task_list"), {"q": "task"}).content.decode()
    link = re.search(rf'<a href="(\?[^"]*)" class="cloud-\d"[^>]*>{project.name}<', html).group(1)
    assert f"project={project.pk}" in link and "q=task" in link
    html = client.get(reverse("courier:task_list") + link.replace("&amp;", "&")).content.decode()
    selected = re.search(rf'<a href="(\?[^"]*)" class="cloud-\d selected"[^>]*>{project.name}<', html).group(1)
    assert "project=" not in selected and "q=task" in selected


def test_each_cloud_is_one_group_by_query(client, staff_viewer):
    build_world(12, 1)
    client.force_login(staff_viewer)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("courier:task_list"), {"enabled": "true"})
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(grouped) == 2  # owners and projects


def test_my_tasks_shows_only_projects_the_user_owns_with_a_project_cloud(client, staff_runner):
    tasks = build_world(9, 1, projects=3)
    mine = tasks[0].project
    Project.objects.filter(pk=mine.pk).update(owner=staff_runner)
    client.force_login(staff_runner)
    html = client.get(reverse("courier:my_tasks")).content.decode()
    assert names_in(html) == {t.name for t in tasks if t.project_id == mine.pk}
    assert set(cloud(html, "Projects")) == {mine.name}
    assert "<h3>Owners" not in html
    assert 'name="owner"' not in html


def test_tables_sort_by_a_column(client, staff_viewer):
    build_world(5, 1)
    client.force_login(staff_viewer)
    html = client.get(reverse("courier:task_list"), {"sort": "-name"}).content.decode()
    order = re.findall(r">(task-\d{4})</a>", html)
    assert order == sorted(order, reverse=True)


def test_project_lists_and_owner_cloud(client, staff_runner):
    tasks = build_world(6, 1, projects=3, owner_count=3)
    Project.objects.filter(pk=tasks[0].project_id).update(owner=staff_runner)
    client.force_login(staff_runner)
    html = client.get(reverse("courier:project_list")).content.decode()
    assert all(f">Project 0{i}</a>" in html for i in range(3))
    owners = cloud(html, "Owners")
    assert owners[staff_runner.username] == (1, False)
    assert "At 06:00" in html  # the schedule in words
    html = client.get(reverse("courier:my_projects")).content.decode()
    assert ">Project 00</a>" in html and ">Project 01</a>" not in html


def test_anonymous_users_go_to_the_admin_login(client):
    response = client.get(reverse("courier:task_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_a_staff_user_without_view_rights_is_refused(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("courier:task_list")).status_code == 403
    assert client.get(reverse("courier:project_list")).status_code == 403
