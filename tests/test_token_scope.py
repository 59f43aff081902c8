"""Tokens stay home (SPEC §8.2): a web connection's header goes only under its base URL, a GitLab token only to its instance.

Checked when a task is saved (the task page, import_config: tasks/validation.py) and
again when the code is fetched, for a URL written into the database behind
the form's back. The servers are real local HTTP servers that record every
header they received (tests/url_support.py), so "not sent" means the other
server saw no token.
"""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from connections.models import Connection
from connections.urls import is_within
from runs.models import RunStatus
from tasks.code import CodeError, load_text
from tasks.configuration.importer import import_config
from tasks.configuration.reader import ConfigError
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories
from tests.form_support import typed_in
from tests.pages_support import database_connection, sftp_connection
from tests.processing_support import run_task
from tests.test_config_io import spec_example
from tests.test_pages_task_form import errors_of, form_data, new_task
from tests.url_support import recorders  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

TOKEN = "web-Token-Canary-31"
GITLAB_TOKEN = "glpat-Canary-47"


@pytest.fixture
def local_urls(settings):
    # Every server here listens on 127.0.0.1; the loopback refusal has its own tests (test_local_urls.py).
    settings.COURIER_ALLOW_LOCAL_URLS = True


def web_connection(base: str, header: str = "X-Api-Key", name: str = "raw") -> Connection:
    return factories.connection("web", name=name, url=base, header=header, token=TOKEN)


def web_task(conn: Connection | None, url: str) -> Task:
    task = factories.query_task(factories.project(), None, "", name="web-code")
    CodeLocation.objects.filter(task=task).update(location="web", connection=conn, url=url)
    return task


def fresh(task: Task) -> Task:
    return Task.objects.prefetch_related("code_locations__connection").get(pk=task.pk)


# --- The rule itself --------------------------------------------------------------


@pytest.mark.parametrize(("url", "inside"), [
    ("https://raw.example.test/acme/q.sql", True),
    ("https://raw.example.test/acme/", True),
    ("https://raw.example.test/acme", True),
    ("HTTPS://RAW.example.test:443/acme/deep/er/q.sql?x=1#f", True),
    ("https://raw.example.test/acmex/q.sql", False),  # a prefix, not a path segment
    ("https://raw.example.test/other/q.sql", False),
    ("https://raw.example.test/acme/../other/q.sql", False),
    ("https://raw.example.test/acme/%2e%2e/other/q.sql", False),
    ("http://raw.example.test/acme/q.sql", False),  # another scheme
    ("https://raw.example.test:8443/acme/q.sql", False),  # another port
    ("https://raw.example.test@evil.example.test/acme/q.sql", False),  # userinfo trick: the host is evil
    ("https://evil.example.test\\@raw.example.test/acme/q.sql", False),
    ("https://raw.example.test.evil.example.test/acme/q.sql", False),
    ("https://user:pw@raw.example.test/acme/q.sql", False),
    ("https:///acme/q.sql", False),
    ("ftp://raw.example.test/acme/q.sql", False),
])
def test_a_url_is_under_the_base_only_with_the_same_scheme_host_port_and_path_segments(url, inside):
    assert is_within(url, "https://raw.example.test/acme/") is inside


# --- Fetching -------------------------------------------------------------------


def test_the_token_is_sent_to_a_url_under_the_base(local_urls, recorders):
    home = recorders()
    home.answer("/acme/q.sql", "SELECT 'home'")
    task = web_task(web_connection(f"{home.url}/acme/"), f"{home.url}/acme/q.sql")
    assert load_text(fresh(task)) == "SELECT 'home'"
    assert home.header_values("X-Api-Key") == [TOKEN]


def test_a_url_outside_the_base_written_behind_the_forms_back_is_refused_when_fetching(local_urls, recorders):
    home, elsewhere = recorders(), recorders()
    elsewhere.answer("/q.sql", "SELECT 'elsewhere'")
    elsewhere.answer("/other/q.sql", "SELECT 'elsewhere'")
    task = web_task(web_connection(f"{home.url}/acme/"), f"{elsewhere.url}/q.sql")
    with pytest.raises(CodeError, match=f"is not under {home.url}/acme/, the base URL of Acme/raw") as refused:
        load_text(fresh(task))
    assert refused.value.permanent
    assert elsewhere.received == []  # not even a request without the token

    CodeLocation.objects.filter(task=task).update(url=f"{home.url}/other/q.sql")  # same origin, another path
    with pytest.raises(CodeError, match="is not under"):
        load_text(fresh(task))
    assert home.received == []


def test_a_web_connection_without_a_base_url_refuses_to_send_its_token(local_urls, recorders):
    """Web connections made before base URLs existed keep a blank one: their token goes nowhere until one is set."""
    home = recorders()
    home.answer("/q.sql", "SELECT 1")
    conn = web_connection(f"{home.url}/")
    Connection.objects.filter(pk=conn.pk).update(url="")
    task = web_task(conn, f"{home.url}/q.sql")
    with pytest.raises(CodeError, match="Acme/raw has no base URL"):
        load_text(fresh(task))
    assert home.received == []


@pytest.mark.parametrize("header", ["X-Api-Key", "Authorization", "PRIVATE-TOKEN"])
def test_a_redirect_to_another_origin_does_not_carry_the_token(local_urls, recorders, header):
    home, elsewhere = recorders(), recorders()
    home.redirect("/acme/q.sql", f"{elsewhere.url}/q.sql")
    elsewhere.answer("/q.sql", "SELECT 'moved'")
    task = web_task(web_connection(f"{home.url}/acme/", header=header), f"{home.url}/acme/q.sql")

    assert load_text(fresh(task)) == "SELECT 'moved'"
    assert home.header_values(header) and TOKEN in home.header_values(header)[0]
    assert [path for path, _ in elsewhere.received] == ["/q.sql"]
    assert elsewhere.header_values(header) == []


def test_a_redirect_out_of_the_base_path_on_the_same_origin_does_not_carry_the_token(local_urls, recorders):
    home = recorders()
    home.redirect("/acme/q.sql", "/public/q.sql")
    home.answer("/public/q.sql", "SELECT 'public'")
    task = web_task(web_connection(f"{home.url}/acme/"), f"{home.url}/acme/q.sql")

    assert load_text(fresh(task)) == "SELECT 'public'"
    sent = {path: headers.get("X-Api-Key") for path, headers in home.received}
    assert sent == {"/acme/q.sql": TOKEN, "/public/q.sql": None}


def test_a_git_clone_is_not_redirected_to_another_origin_with_the_token(local_urls, recorders, git_server, settings,
                                                                         offline_pip, session_venvs):
    settings.COURIER_VENV_DIR = session_venvs
    git_server.add_repo("job", {"main": {"main.py": "print([])\n"}})
    redirector = recorders()
    redirector.forward_to = git_server.url
    conn = web_connection(f"{redirector.url}/", header="X-Api-Key")
    task = Task.objects.create(project=factories.project(), name="pkg", source_kind="python", processing_entry="main.py")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="web", connection=conn, url=f"{redirector.url}/job.git")

    run = run_task(task)
    assert redirector.header_values("X-Api-Key") == [TOKEN]
    assert not [h for h in git_server.headers if "X-Api-Key" in h]
    assert run.status == RunStatus.FAILED and "redirect" in run.error


# --- GitLab ---------------------------------------------------------------------


def gitlab_package_task(conn: Connection, url: str) -> Task:
    task = Task.objects.create(project=factories.project(), name="pkg", source_kind="python", processing_entry="main.py")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="gitlab", connection=conn, url=url)
    return task


def test_a_gitlab_token_goes_with_a_clone_of_its_own_host(local_urls, git_server, settings, offline_pip, session_venvs):
    settings.COURIER_VENV_DIR = session_venvs
    git_server.add_repo("team/job", {"main": {"main.py": "print([])\n"}})
    conn = factories.connection("gitlab", url=git_server.url, token=GITLAB_TOKEN)
    run = run_task(gitlab_package_task(conn, f"{git_server.url}/team/job"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert git_server.headers and all(h.get("Authorization", "").startswith("Basic ") for h in git_server.headers)


def test_a_gitlab_token_is_never_sent_by_git_to_another_host(local_urls, git_server):
    git_server.add_repo("team/job", {"main": {"main.py": "print([])\n"}})
    conn = factories.connection("gitlab", url=git_server.url, token=GITLAB_TOKEN)
    other_host = git_server.url.replace("127.0.0.1", "localhost")  # the same server under another host name
    run = run_task(gitlab_package_task(conn, f"{other_host}/team/job"))

    assert run.status == RunStatus.FAILED
    assert "is not on the GitLab instance" in run.error and GITLAB_TOKEN not in run.error
    assert git_server.headers == []


# --- Saving -------------------------------------------------------------------------


@pytest.fixture
def page_conns():
    return {"db": database_connection(), "sftp": sftp_connection(),
            "web": web_connection("https://raw.example.test/acme/"),
            "gitlab": factories.connection("gitlab", url="https://gitlab.example.test", token=GITLAB_TOKEN)}


def test_the_task_page_refuses_a_web_url_outside_the_base(client, staff_coder, page_conns):
    project = factories.project("Nightly", owner=staff_coder)
    client.force_login(staff_coder)
    data = form_data(page_conns, **{"query-location": "web", "query-connection": page_conns["web"].pk,
                                    "query-url": "https://evil.example.test/acme/q.sql"})
    errors = errors_of(new_task(client, project, data))
    assert ("“https://evil.example.test/acme/q.sql” is not under https://raw.example.test/acme/, "
            "the base URL of Acme/raw: its token is sent only there.") in errors
    assert not Task.objects.exists()

    data["query-url"] = "https://raw.example.test/acme/q.sql"
    assert new_task(client, project, data).status_code == 302


def test_the_task_page_refuses_a_gitlab_package_on_another_host(client, staff_coder, page_conns):
    project = factories.project("Nightly", owner=staff_coder)
    client.force_login(staff_coder)
    data = form_data(page_conns, source_kind="python", processing_entry="main.py", use_script="on",
                     **{"script-location": "gitlab", "script-connection": page_conns["gitlab"].pk,
                        "script-url": "https://other.example.test/team/job.git"})
    errors = errors_of(new_task(client, project, data))
    assert any("“https://other.example.test/team/job.git” is not on the GitLab instance https://gitlab.example.test" in e
               for e in errors), errors
    assert not Task.objects.exists()


def test_the_edit_page_refuses_a_web_url_outside_the_base(client, staff_coder, page_conns):
    task = factories.query_task(factories.project(owner=staff_coder), page_conns["db"], "select 1")
    client.force_login(staff_coder)
    response = typed_in(client, reverse("courier:task_edit", args=[task.pk]), "task_form", **{
        "query-location": "web", "query-connection": page_conns["web"].pk, "query-url": "https://raw.example.test/acmex/q.sql"})
    assert not response.redirect_chain
    assert "is not under https://raw.example.test/acme/, the base URL of Acme/raw" in response.context["editor"].query.errors["url"][0]
    assert task.code_locations.get().location == "inline"


def test_the_admin_shows_and_requires_the_base_url_of_a_web_connection(client, superuser):
    client.force_login(superuser)
    page = client.get("/admin/connections/connection/add/?kind=web").content.decode()
    assert 'name="url"' in page and "its token is sent only to URLs under it" in page
    org = factories.organization("Acme")
    response = client.post("/admin/connections/connection/add/?kind=web",
                           {"organization": org.pk, "name": "raw", "kind": "web", "header": "X-Api-Key", "token": TOKEN,
                            "verify_tls": "on"})
    assert response.status_code == 200 and "A Web URL connection needs a base URL." in response.content.decode()
    assert not Connection.objects.filter(kind="web").exists()


@pytest.fixture
def example(gpg_home, django_user_model):
    django_user_model.objects.create_user("alice")
    return spec_example(gpg_home.public_key_armored)


def test_import_refuses_a_web_url_outside_the_base_with_its_json_path(example, tmp_path, capsys):
    task = example["projects"][0]["tasks"][0]
    task["processing"]["code"] = {"location": "web", "connection": "Acme/github", "url": "https://evil.example.test/acme/split.py"}
    path = tmp_path / "courier.json"
    path.write_text(json.dumps(example))
    with pytest.raises(CommandError) as refused:
        call_command("import_config", str(path))
    assert refused.value.returncode == 2
    assert ("projects[0].tasks[0].processing.code.url: “https://evil.example.test/acme/split.py” is not under "
            "https://raw.githubusercontent.com/acme/, the base URL of Acme/github: its token is sent only there.") in capsys.readouterr().err
    assert not Task.objects.exists()


def test_import_requires_the_base_url_of_a_web_connection(example):
    broken = copy.deepcopy(example)
    web = next(c for c in broken["organizations"][0]["connections"] if c["kind"] == "web")
    del web["url"]
    with pytest.raises(ConfigError) as refused:
        import_config(broken)
    index = broken["organizations"][0]["connections"].index(web)
    assert f"organizations[0].connections[{index}].url: A Web URL connection needs a base URL." in refused.value.errors
