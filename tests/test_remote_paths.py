"""Remote paths stay inside their connection's base folder (SPEC §12: “..” and absolute paths that leave it are refused).

At run time every client joins its paths with `join_remote`; on save the task
page refuses a destination folder, a source path or a code path that leaves
its connection's base folder, naming the path.
"""

from __future__ import annotations

import re
import shutil

import pytest
from django.urls import reverse

from connections.clients.base import ClientError, join_remote
from runs.models import RunStatus
from tasks.models import Task
from tests import factories
from tests.delivery_support import orders_task, run_task
from tests.file_servers import file_connection, put
from tests.test_pages_task_form import errors_of, form_data, new_task


@pytest.mark.parametrize(("base", "parts", "joined"), [
    ("/in", ("sub", "a.csv"), "/in/sub/a.csv"),
    ("/in", ("", "a.csv"), "/in/a.csv"),
    ("/in", ("/in/sub",), "/in/sub"),  # absolute, but inside the base
    ("/in/", ("/in", "a.csv"), "/in/a.csv"),
    ("/", ("/etc", "passwd"), "/etc/passwd"),  # a base of "/" is the whole server
    ("", ("in", "a.csv"), "in/a.csv"),
    ("exports", ("daily",), "exports/daily"),
    ("/in", ("my..file.csv",), "/in/my..file.csv"),
])
def test_paths_inside_the_base_are_joined(base, parts, joined):
    assert join_remote(base, *parts) == joined


@pytest.mark.parametrize(("base", "parts", "named"), [
    ("/in", ("/etc", "passwd"), "/etc"),
    ("/in", ("/etc/passwd",), "/etc/passwd"),
    ("/in", ("/inbox/x.csv",), "/inbox/x.csv"),  # shares the base's first letters only
    ("/in", ("../etc",), "../etc"),
    ("/in", ("sub", "../../etc"), "../../etc"),
    ("/in", ("a/../b",), "a/../b"),
    ("/in", ("..\\etc",), "..\\etc"),
    ("", ("/etc",), "/etc"),  # blank base: the login's own folder
    ("exports", ("/exports/x",), "/exports/x"),
])
def test_paths_that_leave_the_base_are_refused_naming_them(base, parts, named):
    with pytest.raises(ClientError) as caught:
        join_remote(base, *parts)
    assert caught.value.permanent
    assert f"“{named}”" in str(caught.value)


# ---------------------------------------------------------------------------
# A real SFTP server: nothing lands, and nothing is read, outside the base
# ---------------------------------------------------------------------------


@pytest.fixture
def sftp_base_and_neighbour(request, tmp_path):
    """An SFTP connection whose base is one folder, and a writable folder beside it."""
    conn, base = file_connection(request, "sftp", tmp_path)
    neighbour = base.parent / f"{base.name}-neighbour"
    neighbour.mkdir()
    neighbour.chmod(0o777)
    request.addfinalizer(lambda: shutil.rmtree(neighbour, ignore_errors=True))
    return conn, base, neighbour


@pytest.mark.django_db
@pytest.mark.parametrize("folder", ["ABSOLUTE", "../NEIGHBOUR"])
def test_an_sftp_delivery_outside_the_base_fails_and_writes_nothing_there(sqlite_odbc, sftp_base_and_neighbour, folder):
    conn, base, neighbour = sftp_base_and_neighbour
    folder = folder.replace("ABSOLUTE", str(neighbour)).replace("NEIGHBOUR", neighbour.name)
    task = orders_task(sqlite_odbc, output_name="orders.csv")
    factories.destination(task, conn, folder=folder)

    run = run_task(task)

    assert run.status == RunStatus.FAILED and run.permanent
    assert f"“{folder}”" in run.error
    assert list(neighbour.iterdir()) == []
    assert list(base.rglob("*orders*")) == []


@pytest.mark.django_db
def test_an_sftp_source_path_outside_the_base_reads_nothing(sftp_base_and_neighbour):
    conn, _, neighbour = sftp_base_and_neighbour
    put(neighbour, "secret.csv", b"not for this task\n")
    task = Task.objects.create(project=factories.project(), name="files", source_kind="sftp", source_connection=conn,
                               source_path=str(neighbour / "secret.csv"))

    run = run_task(task)

    assert run.status == RunStatus.FAILED and run.permanent
    assert str(neighbour / "secret.csv") in run.error and "outside the base folder" in run.error
    assert not run.files.exists()


# ---------------------------------------------------------------------------
# On save: the task page names the field and the path
# ---------------------------------------------------------------------------


@pytest.fixture
def page_conns():
    sftp = factories.connection("sftp", name="drop", host="sftp.example.test", username="u", folder="/in")
    return {"db": factories.connection("database", name="db", dialect="sqlite", odbc="Driver={SQLite3};Database=x;"),
            "sftp": sftp, "web": factories.connection("web", name="raw", url="https://raw.example.test/")}


BAD_PATHS = [
    ({"dest-0-folder": "/etc"}, "The path “/etc” lies outside the base folder “/in”."),
    ({"dest-0-folder": "../etc"}, "The path “../etc” may not contain “..”."),
    ({"source_kind": "sftp", "source_connection": "SFTP", "source_path": "/etc/passwd"},
     "The path “/etc/passwd” lies outside the base folder “/in”."),
    ({"query-location": "sftp", "query-connection": "SFTP", "query-path": "../sql/orders.sql"},
     "The path “../sql/orders.sql” may not contain “..”."),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "message"), BAD_PATHS)
def test_the_task_page_refuses_a_path_that_leaves_the_base(client, staff_coder, page_conns, overrides, message):
    # A code path on a file server is code that runs: the user may write code.
    project = factories.project("Nightly", owner=staff_coder)
    overrides = {k: page_conns["sftp"].pk if v == "SFTP" else v for k, v in overrides.items()}
    client.force_login(staff_coder)
    assert client.get(reverse("courier:task_new", args=[project.pk])).status_code == 200

    response = new_task(client, project, form_data(page_conns, **overrides))

    assert message in [re.sub("&quot;|&#x27;", "", e) for e in errors_of(response)]
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_the_task_page_accepts_an_absolute_folder_inside_the_base(client, staff_runner, page_conns):
    project = factories.project("Nightly", owner=staff_runner)
    client.force_login(staff_runner)

    response = new_task(client, project, form_data(page_conns, **{"dest-0-folder": "/in/daily"}))

    assert response.status_code == 302, errors_of(response)
    assert Task.objects.get().destinations.get().folder == "/in/daily"
