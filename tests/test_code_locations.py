"""Code locations: inline, SFTP, FTP, SMB, GitLab and web URL, each with the optional cache.

There is no GitLab server to be had here: `gitlab` (tests/fake_gitlab.py) is
a small HTTP server in the test process that answers GitLab's raw-file API
paths with a PRIVATE-TOKEN check.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest

from tasks.code import CodeError, load_text
from tasks.models import CodeLocation, CodeRole
from tests import factories
from tests.fake_gitlab import TOKEN, FakeGitLab, gitlab  # noqa: F401 - gitlab is a fixture
from tests.file_servers import file_connection, ftp_conn, put

pytestmark = pytest.mark.django_db

@pytest.fixture(autouse=True)
def local_urls(settings):
    # The GitLab stand-in and the web servers listen on 127.0.0.1 (SPEC §8.2 refuses that by default).
    settings.COURIER_ALLOW_LOCAL_URLS = True


QUERY = "-- orders of the day\nDECLARE @day date = '2024-01-01'\nSELECT 'café' AS x\n"


def task_with_code(name: str = "code", **code) -> tuple:
    from projects.models import Project

    project = Project.objects.filter(name="Nightly").first() or factories.project()
    task = factories.query_task(project, None, "", name=name)
    location = task.code_locations.get()
    for key, value in code.items():
        setattr(location, key, value)
    location.save()
    return task, location


def fresh(task):
    # What the runner does: code locations prefetched with their connections.
    return type(task).objects.prefetch_related("code_locations__connection").get(pk=task.pk)


def test_inline_code_is_used_as_written():
    task, _ = task_with_code(location="inline", text=QUERY)
    assert load_text(fresh(task)) == QUERY


# --- File servers ---------------------------------------------------------------


@pytest.fixture(params=["sftp", "ftp", "smb"])
def code_on_server(request, tmp_path):
    return file_connection(request, request.param, tmp_path)


def test_file_server_code_with_cache_and_fallback(code_on_server):
    conn, folder = code_on_server
    put(folder, "sql/orders.sql", b"\xef\xbb\xbf" + QUERY.encode())  # a BOM is dropped
    task, location = task_with_code(location=conn.kind, connection=conn, path="sql/orders.sql", cache=True)

    assert load_text(fresh(task)) == QUERY
    location.refresh_from_db()
    assert location.cached_text == QUERY and location.cached_at is not None

    (folder / "sql" / "orders.sql").unlink()
    warnings = []
    assert load_text(fresh(task), warn=warnings.append) == QUERY
    assert len(warnings) == 1
    assert "Could not fetch the code from sql/orders.sql" in warnings[0]
    assert "Using the cached copy from" in warnings[0]


def test_file_server_code_without_cache_fails_clearly(code_on_server):
    conn, _ = code_on_server
    task, _ = task_with_code(location=conn.kind, connection=conn, path="sql/missing.sql")
    with pytest.raises(CodeError, match="missing.sql"):
        load_text(fresh(task))


def test_code_that_is_not_utf8_is_refused(ftp_server):
    conn = ftp_conn(ftp_server)
    (ftp_server.root / "latin1.sql").write_bytes("SELECT 'café'".encode("latin-1"))
    task, _ = task_with_code(location="ftp", connection=conn, path="latin1.sql")
    with pytest.raises(CodeError, match="not UTF-8 text .byte 0xe9"):
        load_text(fresh(task))


# --- GitLab ---------------------------------------------------------------------


def gitlab_conn(fake: FakeGitLab, token: str = TOKEN):
    return factories.connection("gitlab", url=fake.url, token=token)


def test_gitlab_file_url_names_the_branch(gitlab):
    gitlab.files[("data/reports", "release", "sql/daily orders.sql")] = QUERY.encode()
    url = f"{gitlab.url}/data/reports/-/blob/release/sql/daily%20orders.sql?ref_type=heads"
    task, _ = task_with_code(location="gitlab", connection=gitlab_conn(gitlab), url=url)
    assert load_text(fresh(task)) == QUERY
    assert gitlab.seen == [("data/reports", "release", "sql/daily orders.sql")]


def test_gitlab_branch_with_a_slash_is_found(gitlab):
    gitlab.files[("team/etl", "feature/q3", "q.sql")] = b"SELECT 3"
    task, _ = task_with_code(location="gitlab", connection=gitlab_conn(gitlab), url=f"{gitlab.url}/team/etl/-/raw/feature/q3/q.sql")
    assert load_text(fresh(task)) == "SELECT 3"
    # "feature" was tried first and was not a branch holding q3/q.sql.
    assert gitlab.seen == [("team/etl", "feature", "q3/q.sql"), ("team/etl", "feature/q3", "q.sql")]


def test_gitlab_project_url_reads_the_default_branch(gitlab):
    gitlab.files[("team/etl", "HEAD", "queries/a.sql")] = b"SELECT 'default'"
    task, _ = task_with_code(location="gitlab", connection=gitlab_conn(gitlab), url=f"{gitlab.url}/team/etl", path="queries/a.sql")
    assert load_text(fresh(task)) == "SELECT 'default'"


def test_gitlab_wrong_token_fails_and_the_cache_takes_over(gitlab):
    gitlab.files[("team/etl", "main", "a.sql")] = QUERY.encode()
    conn = gitlab_conn(gitlab)
    task, location = task_with_code(location="gitlab", connection=conn, url=f"{gitlab.url}/team/etl/-/blob/main/a.sql", cache=True)
    assert load_text(fresh(task)) == QUERY

    conn.token = "glpat-revoked"
    conn.save()
    warnings = []
    assert load_text(fresh(task), warn=warnings.append) == QUERY
    assert "401" in warnings[0] and "token" in warnings[0]
    assert "glpat-revoked" not in warnings[0]

    CodeLocation.objects.filter(pk=location.pk).update(cache=False)
    with pytest.raises(CodeError, match="answered 401") as failure:
        load_text(fresh(task))
    assert failure.value.permanent


def test_gitlab_url_of_another_instance_is_refused(gitlab):
    task, _ = task_with_code(location="gitlab", connection=gitlab_conn(gitlab), url="https://gitlab.example.com/a/b/-/blob/main/x.sql")
    with pytest.raises(CodeError, match="is not on the GitLab instance"):
        load_text(fresh(task))


# --- Web URL --------------------------------------------------------------------


def test_web_url_sends_the_token_header(http_server):
    (http_server.root / "q.sql").write_text(QUERY, encoding="utf-8")
    conn = factories.connection("web", url=http_server.url, header="X-Api-Key", token="web-secret-token")
    task, _ = task_with_code(location="web", connection=conn, url=f"{http_server.url}/q.sql")
    assert load_text(fresh(task)) == QUERY
    assert http_server.received[-1].headers["X-Api-Key"] == "web-secret-token"


def test_web_url_without_connection_and_a_bare_token_as_bearer(http_server):
    (http_server.root / "q.sql").write_text("SELECT 1", encoding="utf-8")
    task, _ = task_with_code(location="web", url=f"{http_server.url}/q.sql")
    assert load_text(fresh(task)) == "SELECT 1"
    assert http_server.received[-1].headers["Authorization"] is None

    conn = factories.connection("web", url=http_server.url, token="abc123")
    task2, _ = task_with_code("code2", location="web", connection=conn, url=f"{http_server.url}/q.sql")
    assert load_text(fresh(task2)) == "SELECT 1"
    assert http_server.received[-1].headers["Authorization"] == "Bearer abc123"


def test_web_url_failure_with_cache_but_no_copy_yet(http_server):
    task, _ = task_with_code(location="web", url=f"{http_server.url}/missing.sql", cache=True)
    with pytest.raises(CodeError) as failure:
        load_text(fresh(task))
    message = str(failure.value)
    assert "answered 404" in message and "no cached copy to fall back on yet" in message


def test_web_cache_fallback_when_the_server_is_gone(http_server):
    (http_server.root / "q.sql").write_text(QUERY, encoding="utf-8")
    task, location = task_with_code(location="web", url=f"{http_server.url}/q.sql", cache=True)
    assert load_text(fresh(task)) == QUERY
    CodeLocation.objects.filter(pk=location.pk).update(url="http://127.0.0.1:9/q.sql")  # nothing listens there
    warnings = []
    assert load_text(fresh(task), warn=warnings.append) == QUERY
    assert "Cannot fetch http://127.0.0.1:9/q.sql" in warnings[0]


def test_web_url_over_tls_is_verified(tls_cert, tmp_path):
    import ssl
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args) -> None:
            pass

    (tmp_path / "q.sql").write_text("SELECT 'tls'")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_cert.cert_path, tls_cert.key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/q.sql"
        task, _ = task_with_code(location="web", url=url)
        with pytest.raises(CodeError, match="TLS certificate of .* cannot be verified"):
            load_text(fresh(task))
        conn = factories.connection("web", url=url, verify_tls=False)
        CodeLocation.objects.filter(task=task).update(connection=conn)
        assert load_text(fresh(task)) == "SELECT 'tls'"
    finally:
        server.shutdown()
        server.server_close()


def test_processing_role_is_loaded_separately():
    task, _ = task_with_code(location="inline", text="SELECT 1")
    CodeLocation.objects.create(task=task, role=CodeRole.PROCESSING, location="inline", text="print('hi')")
    assert load_text(fresh(task), CodeRole.PROCESSING) == "print('hi')"
