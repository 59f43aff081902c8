"""Every page a person can reach by clicking, as a superuser and as staff users (issue 15).

Starting at the admin index and Courier's dashboard, the crawler follows every
link inside the admin (GET only: buttons that change things are forms, not
links), with a few objects of each model present, so that every changelist
leads on to its objects' change, history and delete pages. Each page must
answer below 500 and keep its <div>s balanced (one stray </div> once pulled
Task Details' history over the page). Then each staff user opens every page
the superuser reached: what they may not see is refused with its reason, in
the admin's look.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urldefrag, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from runs import retries
from runs.models import Delivery, DeliveryKind, DeliveryStatus, Run, RunStatus, Trigger
from runs.state import create_run, record_skipped
from tasks.models import CodeLocation, CodeRole, Notification, NotificationEvent, Task, TaskParameter
from tests import factories
from tests.security_support import build_world

pytestmark = pytest.mark.django_db

MAX_PAGES = 1500  # a safety stop: the world below has some 300 pages
QUERY_VARIANTS = 2  # sorted, filtered and paged versions of one page: a couple is enough


class Links(HTMLParser):
    """The href of every <a>, and whether the <div>s of the page close as they open."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.depth = 0
        self.lowest = 0

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]
        elif tag == "div":
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "div":
            self.depth -= 1
            self.lowest = min(self.lowest, self.depth)


def links_of(url: str, html: str) -> tuple[list[str], bool]:
    parser = Links()
    parser.feed(html)
    found = []
    for href in parser.hrefs:
        href = urldefrag(href)[0]
        if href.startswith("?"):
            href = urlsplit(url).path + href
        if href.startswith("/admin/"):
            found.append(without_noise(href))
    return found, parser.depth == 0 and parser.lowest == 0


def without_noise(url: str) -> str:
    """The admin's change links carry the list's filters back along; the page is the same without them."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "_changelist_filters"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def crawl(client: Client, starts: list[str]) -> dict[str, int]:
    """url → status of every admin page reachable from `starts` by links; fails on what a person must never see."""
    seen: dict[str, int] = {}
    variants: dict[str, int] = {}
    queue = deque(starts)
    problems = []
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        path = urlsplit(url).path
        if url in seen or (url != path and variants.get(path, 0) >= QUERY_VARIANTS):
            continue
        if url != path:
            variants[path] = variants.get(path, 0) + 1
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code >= 500:
            problems.append(f"{url}: HTTP {response.status_code}")
            continue
        if response.status_code == 403:
            problems += refusal_problems(url, response.content.decode())
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        found, balanced = links_of(url, response.content.decode())
        if not balanced:
            problems.append(f"{url}: its <div> elements do not close as they open")
        queue.extend(link for link in found if link not in seen)
    assert not problems, "\n".join(problems)
    assert len(seen) < MAX_PAGES, "the crawl did not end: a page links to ever new pages"
    return seen


def refusal_problems(url: str, html: str) -> list[str]:
    """A refused page says why, inside the admin's frame."""
    problems = []
    if '<div id="site-name"><a href="/admin/">Courier</a></div>' not in html or "admin/css/base.css" not in html:
        problems.append(f"{url}: refused outside the admin's look")
    reason = re.search(r'<p class="errornote">([^<]+)</p>', html)
    if not reason or not reason.group(1).strip():
        problems.append(f"{url}: refused without a reason")
    return problems


@pytest.fixture
def world(tmp_path, superuser, staff_runner):
    """A few of each object: every connection kind, trigger kind, source kind and run state."""
    base = build_world(tmp_path, staff_runner)
    conns = {
        "sftp": factories.connection("sftp", name="vendor-sftp", host="sftp.example.test", username="u", password="pw-sftp-1"),
        "ftp": factories.connection("ftp", name="vendor-ftp", org="Globex", host="ftp.example.test", username="u", password="pw-ftp-1"),
        "smb": factories.connection("smb", name="share", org="Globex", host="smb.example.test", share="drop", username="u", password="pw-smb-1"),
        "ssh": factories.connection("ssh", name="shell", host="ssh.example.test", username="u"),
        "gitlab": factories.connection("gitlab", name="code", url="https://gitlab.example.test", token="tok-gitlab-1"),
        "web": factories.connection("web", name="raw", url="https://code.example.test/"),
    }
    now = timezone.now()
    hourly = factories.project("Hourly", owner=superuser, interval_every=1, interval_unit="hours", sequence=True)
    factories.project("Once", owner=staff_runner, once_at=now + timedelta(days=2))
    factories.project("Empty", owner=superuser, cron="30 5 * * 1-5", timezone="Europe/Amsterdam")
    files = Task.objects.create(project=hourly, name="pickup", source_kind="sftp", source_connection=conns["sftp"], source_path="in/*.csv")
    factories.destination(files, conns["smb"], folder="out")
    factories.destination(files, conns["ftp"])
    shell = Task.objects.create(project=hourly, name="shell", source_kind="ssh", source_connection=conns["ssh"], rank=2)
    CodeLocation.objects.create(task=shell, role=CodeRole.SOURCE, location="inline", text="ls /data")
    script = Task.objects.create(project=hourly, name="script", source_kind="python", rank=3, retry_max=2)
    CodeLocation.objects.create(task=script, role=CodeRole.PROCESSING, location="gitlab", connection=conns["gitlab"],
                                url="https://gitlab.example.test/acme/tools/-/raw/main/job.py")
    TaskParameter.objects.create(task=script, key="{day}", value="parse(%Y-%m-%d)")
    Notification.objects.create(task=base.task, event=NotificationEvent.FAILURE, recipients="ops@example.test")
    _runs_in_every_state(files, shell, script)
    return base


def _runs_in_every_state(files: Task, shell: Task, script: Task) -> None:
    failed = create_run(script, Trigger.SCHEDULE)
    Run.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED, started_at=timezone.now(), finished_at=timezone.now(),
                                            error_stage="source", error="Connection refused")
    failed.refresh_from_db()
    retries.schedule_retry(failed)
    running = create_run(shell, Trigger.MANUAL)
    Run.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    record_skipped(shell, Trigger.SCHEDULE, "previous run still active (run 1).", intended_at=timezone.now())
    cancelled = create_run(files, Trigger.SCHEDULE)
    Run.objects.filter(pk=cancelled.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    queued = create_run(files, Trigger.MANUAL)
    Delivery.objects.create(run=queued, kind=DeliveryKind.EMAIL, target="ops@example.test", status=DeliveryStatus.FAILED,
                            error="SMTP refused", at=timezone.now())


STARTS = ["/admin/", "/admin/courier/"]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_page_answers_and_every_refusal_says_why(world, superuser, staff_runner, staff_viewer):
    everything = crawl(logged_in(superuser), STARTS)
    reached = set(everything)
    # The crawl went where it should: object pages of each kind, Courier's pages, the queue's internals.
    for expected in ("/admin/courier/scheduler/", "/admin/django_q/schedule/", "/admin/admin/logentry/",
                     f"/admin/courier/tasks/{world.task.pk}/", f"/admin/courier/projects/{world.project.pk}/"):
        assert expected in reached, expected
    changes = {path for path in reached if re.fullmatch(r"/admin/\w+/\w+/\d+/change/", path)}
    models = {".".join(path.split("/")[2:4]) for path in changes}
    assert {"connections.connection", "connections.organization", "connections.gpgkey", "projects.project",
            "tasks.task", "runs.run", "auth.user", "auth.group"} <= models, models
    assert len([p for p in changes if p.startswith("/admin/connections/connection/")]) >= 8  # every kind
    assert len([p for p in changes if p.startswith("/admin/runs/run/")]) >= 6  # every state

    for staff in (staff_runner, staff_viewer):
        own = crawl(logged_in(staff), STARTS)
        # Links a staff user is offered but refused: only the admin's read-only links to a related object
        # (a task's connection, a project's owner) that only superusers may open; each said why (crawl checks).
        offered_refused = {url for url, status in own.items() if status == 403}
        assert all(re.fullmatch(r"/admin/(connections/connection|auth/user)/\d+/change/", url) for url in offered_refused), offered_refused
        # The superuser's pages, opened by the staff user (a link passed on, a bookmark): each works or says why not.
        refused = crawl_once(logged_in(staff), [url for url in everything if url not in own])
        assert "/admin/courier/scheduler/" in refused and "/admin/django_q/schedule/" in refused, staff


def crawl_once(client: Client, urls: list[str]) -> list[str]:
    """Open each url once (no following); the refused ones, each checked for its reason and look."""
    problems, refused = [], []
    for url in urls:
        response = client.get(url)
        if response.status_code >= 500:
            problems.append(f"{url}: HTTP {response.status_code}")
        elif response.status_code == 403:
            refused.append(url)
            problems += refusal_problems(url, response.content.decode())
    assert not problems, "\n".join(problems)
    return refused


def test_the_crawler_notices_what_it_checks():
    """The checks themselves: a stray </div>, a bare refusal, a refusal without a reason."""
    assert links_of("/admin/x/", '<div><a href="?o=1">a</a></div>') == (["/admin/x/?o=1"], True)
    assert links_of("/admin/x/", "<div></div></div><div>")[1] is False
    assert refusal_problems("/x/", "<h1>403 Forbidden</h1>") == ["/x/: refused outside the admin's look", "/x/: refused without a reason"]
