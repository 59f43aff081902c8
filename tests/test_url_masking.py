"""Credentials in a code URL (?private_token=…, user:password@) never show on a page or in a log."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connections.masking import mask_url
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.processing_support import run_task

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("url", "shown"), [
    ("https://gitlab.example.test/api/v4/projects/1/repository/files/q.sql/raw?private_token=glpat-S3cret&ref=main",
     "https://gitlab.example.test/api/v4/projects/1/repository/files/q.sql/raw?private_token=********&ref=main"),
    ("https://h.example.test/q.sql?access_token=a1&TOKEN=b2&key=c3&api_key=d4&X-Amz-Signature=e5&X-Amz-Credential=f6&page=2",
     "https://h.example.test/q.sql?access_token=********&TOKEN=********&key=********&api_key=********"
     "&X-Amz-Signature=********&X-Amz-Credential=********&page=2"),
    ("https://h.example.test/q.sql?monkey=banana&keys=1&ref_type=heads", "https://h.example.test/q.sql?monkey=banana&keys=1&ref_type=heads"),
    ("https://deploy:p4ss-w0rd@h.example.test/repo.git#main", "https://deploy:********@h.example.test/repo.git#main"),
    ("https://ghp_T0ken@github.example.test/acme/repo.git", "https://********@github.example.test/acme/repo.git"),
    ("https://h.example.test/cb#access_token=xyz&state=1", "https://h.example.test/cb#access_token=********&state=1"),
    ("https://h.example.test/q.sql?private%5Ftoken=enc0ded", "https://h.example.test/q.sql?private%5Ftoken=********"),
    ("https://h.example.test/plain.sql", "https://h.example.test/plain.sql"),
    ("not a url at all", "not a url at all"),
    ("", ""),
])
def test_credentials_in_a_url_are_masked_and_the_rest_kept(url, shown):
    assert mask_url(url) == shown


def test_task_details_and_the_run_log_show_a_code_url_without_its_token(client, superuser, settings):
    settings.COURIER_ALLOW_LOCAL_URLS = True  # the fetch goes to 127.0.0.1:9, where nothing listens
    script_task = Task.objects.create(project=factories.project(), name="lab", source_kind="python")
    url = "http://127.0.0.1:9/api/v4/projects/7/repository/files/job.py/raw?ref=main&private_token=glpat-Page-Canary-5"
    CodeLocation.objects.create(task=script_task, role=CodeRole.PROCESSING, location="web", url=url)
    query_task = factories.query_task(script_task.project, None, "", name="query")
    CodeLocation.objects.filter(task=query_task).update(location="web", url="https://ops:Pa55-Page-Canary-6@code.example.test/q.sql")
    run = run_task(script_task)

    client.force_login(superuser)
    pages = [client.get(reverse("courier:task_detail", args=[task.pk])).content.decode() for task in (script_task, query_task)]
    log = client.get(reverse("courier:run_log", args=[run.pk])).content.decode()
    assert "private_token=********" in pages[0] and "ops:********@code.example.test" in pages[1]
    assert "Cannot fetch http://127.0.0.1:9/api/v4/projects/7/repository/files/job.py/raw" in log
    assert "Page-Canary" not in "".join(pages) + log + run.error
