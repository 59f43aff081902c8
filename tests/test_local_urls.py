"""Remote code URLs may not reach this machine's own services or link-local addresses (SPEC §8.2).

By default a web or GitLab code URL, a package URL or a redirect that
resolves to a loopback (127.0.0.0/8, ::1), link-local (169.254/16, fe80::/10)
or unspecified (0.0.0.0, ::) address is refused before anything is sent;
COURIER_ALLOW_LOCAL_URLS=true allows them (the other tests' local servers
need it). Private ranges stay allowed: internal GitLab servers live there.
"""

from __future__ import annotations

import pytest
import requests
from django.urls import reverse

from connections.clients import ClientError, http
from connections.clients.addresses import local_kind
from connections.clients.peer_guard import GuardedAdapter
from runs.models import RunStatus
from tasks.code import CodeError, load_text
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.pages_support import database_connection, sftp_connection
from tests.processing_support import run_task
from tests.test_pages_task_form import errors_of, form_data, new_task
from tests.url_support import outward_address, recorders  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

LOGIN_PAGE = "<html><form><input name='csrfmiddlewaretoken' value='Login-Page-Marker-83'></form>SELECT 'x'</html>"


def web_code_task(url: str, *, source=None, cache: bool = False) -> Task:
    task = factories.query_task(factories.project(), source, "", name="fetches")
    CodeLocation.objects.filter(task=task).update(location="web", url=url, cache=cache)
    return task


def fresh(task: Task) -> Task:
    return Task.objects.prefetch_related("code_locations__connection").get(pk=task.pk)


def test_by_default_a_loopback_url_is_refused_and_nothing_of_it_shows_on_task_details(client, superuser, sqlite_odbc, recorders):
    admin = recorders()  # stands in for Courier's own http://127.0.0.1:8000/admin/login/
    admin.answer("/admin/login/", LOGIN_PAGE)
    source = factories.connection("database", dialect="sqlite", odbc=sqlite_odbc.odbc)
    task = web_code_task(f"{admin.url}/admin/login/", source=source, cache=True)

    run = run_task(task)
    assert run.status == RunStatus.FAILED
    assert "127.0.0.1 is a loopback address" in run.error and "COURIER_ALLOW_LOCAL_URLS" in run.error
    assert admin.received == []
    assert CodeLocation.objects.get(task=task).cached_text == ""

    client.force_login(superuser)
    page = client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()
    log = client.get(reverse("courier:run_log", args=[run.pk])).content.decode()
    assert "Login-Page-Marker-83" not in page + log
    assert "loopback address" in log


def test_the_setting_allows_local_urls(settings, recorders):
    settings.COURIER_ALLOW_LOCAL_URLS = True
    local = recorders()
    local.answer("/q.sql", "SELECT 'local'")
    assert load_text(fresh(web_code_task(f"{local.url}/q.sql"))) == "SELECT 'local'"
    assert [path for path, _ in local.received] == ["/q.sql"]


@pytest.mark.parametrize(("host", "kind"), [
    ("127.0.0.1", "a loopback"),
    ("127.1", "a loopback"),  # the same address, not written the usual way: only resolving it tells
    ("2130706433", "a loopback"),
    ("localhost", "a loopback"),
    ("[::1]", "a loopback"),
    ("[::ffff:127.0.0.1]", "a loopback"),
    ("169.254.169.254", "a link-local"),  # the cloud metadata service
    ("[fe80::1]", "a link-local"),
    ("0.0.0.0", "an unspecified"),
    ("[::]", "an unspecified"),
])
def test_loopback_link_local_and_unspecified_addresses_are_refused_as_resolved(host, kind):
    with pytest.raises(ClientError, match=f"is {kind} address") as refused:
        http.get(f"http://{host}:9/admin/login/")
    assert refused.value.permanent


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.5", "192.168.1.10", "fd00::5", "93.184.216.34", "2001:db8::1"])
def test_private_and_public_addresses_are_allowed(address):
    assert local_kind(address) == ""


def test_a_redirect_to_a_loopback_address_is_refused(recorders):
    address = outward_address()
    if not address:
        pytest.skip("this machine has no address besides loopback")
    outside = recorders(address)  # not loopback: allowed by default
    outside.redirect("/q.sql", "http://127.1:9/admin/login/")
    outside.answer("/ok.sql", "SELECT 'fine'")
    assert http.get(f"{outside.url}/ok.sql") == b"SELECT 'fine'"
    with pytest.raises(ClientError, match="127.1 is a loopback address"):
        http.get(f"{outside.url}/q.sql")


def test_the_connection_itself_is_checked_so_a_name_that_resolves_again_cannot_slip_through(recorders):
    """DNS may answer differently the second time: the address actually connected to is checked too."""
    local = recorders()
    local.answer("/q.sql", "SELECT 1")
    with requests.Session() as session:
        session.mount("http://", GuardedAdapter())
        with pytest.raises(ClientError, match="is a loopback address"):
            session.get(f"{local.url}/q.sql", timeout=5)
    assert local.received == []


def test_a_git_package_on_a_loopback_address_is_refused(git_server):
    git_server.add_repo("job", {"main": {"main.py": "print([])\n"}})
    task = Task.objects.create(project=factories.project(), name="pkg", source_kind="python", processing_entry="main.py")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="web", url=f"{git_server.url}/job.git")
    run = run_task(task)
    assert run.status == RunStatus.FAILED and "is a loopback address" in run.error
    assert git_server.headers == []


def test_a_gitlab_instance_on_a_loopback_address_is_refused_when_fetching(recorders):
    local = recorders()
    conn = factories.connection("gitlab", url=local.url, token="glpat-x")
    task = web_code_task(f"{local.url}/team/etl/-/blob/main/q.sql")
    CodeLocation.objects.filter(task=task).update(location="gitlab", connection=conn)
    with pytest.raises(CodeError, match="is a loopback address"):
        load_text(fresh(task))
    assert local.received == []


def test_the_task_page_refuses_a_loopback_code_url_when_saving(client, staff_coder):
    project = factories.project("Nightly", owner=staff_coder)
    conns = {"db": database_connection(), "sftp": sftp_connection()}
    client.force_login(staff_coder)
    data = form_data(conns, **{"query-location": "web", "query-url": "http://localhost:8000/admin/login/"})
    errors = errors_of(new_task(client, project, data))
    assert any("localhost is a loopback address" in e for e in errors), errors
    assert not Task.objects.exists()
