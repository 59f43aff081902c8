"""Fast at size: the number of queries of every page does not grow with the data, and no history is counted.

Each page is measured on a small world and again after ten times more tasks
and runs were added; the counts must be equal. (The benchmark of issue 10
runs the same pages at 10,000 tasks and 1,000,000 runs.)
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from projects.models import Project
from runs.models import Delivery, DeliveryKind, DeliveryStatus, RunFile
from tests.pages_support import build_world

pytestmark = pytest.mark.django_db
MOST_QUERIES = 12


def page_urls(task, run) -> list[str]:
    project = task.project_id
    return [
        reverse("courier:dashboard"),
        reverse("courier:task_list"),
        reverse("courier:task_list") + "?status=failed&enabled=true&q=task",
        reverse("courier:task_list") + "?sort=-last_status&page=2",
        reverse("courier:my_tasks"),
        reverse("courier:task_detail", args=[task.pk]),
        reverse("courier:task_detail", args=[task.pk]) + "?runs-page=2&files-page=2",
        reverse("courier:task_edit", args=[task.pk]),
        reverse("courier:task_new", args=[project]),
        reverse("courier:task_delete", args=[task.pk]),
        reverse("courier:run_log", args=[run.pk]),
        reverse("courier:project_list"),
        reverse("courier:project_list") + f"?owner={task.project.owner_id}",
        reverse("courier:my_projects"),
        reverse("courier:project_detail", args=[project]),
        reverse("courier:project_edit", args=[project]),
        reverse("courier:scheduler"),
    ]


def count_queries(client, urls: list[str]) -> dict[str, int]:
    counts = {}
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url] = len(queries.captured_queries)
    return counts


def test_query_counts_do_not_grow_with_tasks_and_runs(client, superuser):
    tasks = build_world(30, 3, projects=6)
    Project.objects.filter(pk=tasks[0].project_id).update(owner=superuser)
    task = tasks[0]
    urls = page_urls(task, task.runs.first())
    client.force_login(superuser)
    count_queries(client, urls)  # warm the content-type and permission caches
    small = count_queries(client, urls)

    build_world(300, 10, projects=20, owner_count=8, prefix="big-")  # ten times the tasks, thirty times the runs
    large = count_queries(client, urls)
    assert large == small
    # The pages people keep open (issue 20): at most 12 queries each, whatever the size.
    read_pages = [url for url in urls if not url.endswith(("/edit/", "/new-task/", "/delete/")) and "-page=2" not in url]
    assert {url: small[url] for url in read_pages if small[url] > MOST_QUERIES} == {}


def test_run_history_is_paginated_without_counting_the_runs(client, superuser):
    tasks = build_world(3, 40)
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("courier:task_detail", args=[tasks[0].pk]) + "?runs-page=2").content.decode()
    html = page.split('id="runs"')[1].split('id="files"')[0]
    counted = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counted == []
    assert "page 2" in html and "next ›" in html  # a lazy paginator still offers the next page
    # The second page holds runs 16–30 of the newest-first history.
    runs = list(tasks[0].runs.order_by("-id").values_list("pk", flat=True))
    assert f'href="/admin/runs/run/{runs[15]}/change/"' in html
    assert f'href="/admin/runs/run/{runs[14]}/change/"' not in html


def test_the_task_list_reads_the_last_status_from_each_tasks_latest_run_row_never_from_the_runs(client, superuser):
    build_world(25, 4)
    client.force_login(superuser)
    for url in (reverse("courier:task_list"), reverse("courier:task_list") + "?status=failed&sort=-last_status"):
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        sql = [q["sql"] for q in queries.captured_queries]
        assert not [q for q in sql if '"runs_run"' in q], url  # the history is never searched for the newest run
        assert [q for q in sql if '"runs_latestrun"' in q], url


def test_task_details_with_resends_and_deep_run_pages_stays_within_the_budget_and_shows_the_right_runs(client, superuser):
    [task, *_] = build_world(3, 70)
    for number, record in enumerate(RunFile.objects.filter(run__task=task).order_by("-id")[:3]):
        Delivery.objects.create(run=record.run, file=record, kind=DeliveryKind.UPLOAD, target=f"SFTP vendor /in/{number}",
                                status=(DeliveryStatus.QUEUED, DeliveryStatus.PENDING, DeliveryStatus.SENT)[number],
                                resent_by=superuser, queued_at=timezone.now())
    client.force_login(superuser)
    url = reverse("courier:task_detail", args=[task.pk])
    count_queries(client, [url])
    assert count_queries(client, [url])[url] <= MOST_QUERIES
    files = client.get(url).content.decode().split('id="files"')[1].split('id="action-history"')[0]
    for label, number in (("queued", 0), ("sending", 1), ("sent", 2)):
        assert f">{label}</span> SFTP vendor /in/{number}" in files
    newest = list(task.runs.order_by("-id").values_list("pk", flat=True))
    for page in (1, 3, 4, 5):  # pages 1–3 come from the rows the state read, 4 and 5 from a query of their own
        html = client.get(f"{url}?runs-page={page}").content.decode().split('id="runs"')[1].split('id="files"')[0]
        shown = [int(pk) for pk in re.findall(r'/admin/runs/run/(\d+)/change/', html)]
        assert shown == newest[(page - 1) * 15:page * 15], page
