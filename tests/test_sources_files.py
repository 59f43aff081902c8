"""SFTP, FTP and SMB file sources against real servers: wildcards, byte-exact downloads, re-delimiting."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

import pytest

from connections.clients.remote import expand
from connections.kinds import client_for
from projects.models import ProjectParameter
from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tasks.models import Task
from tests import factories
from tests.file_servers import FILE_KINDS, file_connection, put

pytestmark = pytest.mark.django_db

BINARY = bytes(range(256)) * 8 + b"\x00\xff"
LATIN1 = "id;name\n1;Zoë;Ålesund\n".encode("latin-1")
# Monday 5 January 2024, 06:00 in the project's zone.
AT = datetime(2024, 1, 5, 6, 0, tzinfo=zoneinfo.ZoneInfo("UTC"))

TREE = {
    "in/orders_20240105_a.csv": b"a\n",
    "in/orders_20240105_b.csv": b"b\n",
    "in/orders_20240106_a.csv": b"c\n",
    "in/orders_2024010X_a.csv": b"d\n",
    "in/.orders_20240105_hidden.csv": b"hidden\n",
    "in/sub/orders_20240105_c.csv": b"deeper\n",
    "in/2024/orders_20240105_a.csv": b"year\n",
    "in/archive.csv/readme.txt": b"a folder named like a file\n",
}


@pytest.fixture(params=FILE_KINDS)
def source(request, tmp_path):
    conn, folder = file_connection(request, request.param, tmp_path)
    for relative, data in TREE.items():
        put(folder, relative, data)
    return conn, folder


# Pattern -> the files it matches, relative to the connection's base folder.
WILDCARDS = {
    "in/orders_20240105_*.csv": ["in/orders_20240105_a.csv", "in/orders_20240105_b.csv"],  # not sub/, not hidden
    "in/orders_2024010[5-6]_a.csv": ["in/orders_20240105_a.csv", "in/orders_20240106_a.csv"],
    "in/orders_2024010[!5]_a.csv": ["in/orders_20240106_a.csv", "in/orders_2024010X_a.csv"],
    "in/orders_2024010?_a.csv": ["in/orders_20240105_a.csv", "in/orders_20240106_a.csv", "in/orders_2024010X_a.csv"],
    "in/*_c.csv": [],  # * does not cross /
    "in*c.csv": [],
    "in/*/orders_*.csv": ["in/2024/orders_20240105_a.csv", "in/sub/orders_20240105_c.csv"],
    "in/.orders_*.csv": ["in/.orders_20240105_hidden.csv"],  # a dot-name needs a dot in the pattern
    "in/*.csv": ["in/orders_20240105_a.csv", "in/orders_20240105_b.csv", "in/orders_20240106_a.csv", "in/orders_2024010X_a.csv"],
    "in/orders_20240105_a.csv": ["in/orders_20240105_a.csv"],
    "in/archive.csv": [],  # a folder is never a match
    "nowhere/*.csv": [],
}


def test_wildcards(source):
    conn, _ = source
    with client_for(conn) as client:
        assert {pattern: expand(client, pattern) for pattern in WILDCARDS} == WILDCARDS


def file_task(conn, path: str, **fields) -> Task:
    return Task.objects.create(
        project=factories.project(timezone="UTC"), name="files", source_kind=conn.kind, source_connection=conn,
        source_path=path, **fields,
    )


def run_task(task, at=AT):
    run = create_run(task, "manual", intended_at=at)
    execute(run.pk)
    run.refresh_from_db()
    return run


def messages(run) -> str:
    return "\n".join(run.log_lines.values_list("message", flat=True))


def test_every_match_arrives_byte_for_byte(source):
    conn, folder = source
    put(folder, "drop/acme_blob.bin", BINARY)
    put(folder, "drop/acme_20240104.txt", LATIN1)
    put(folder, "drop/acme_20240105.txt", b"not yesterday")
    put(folder, "drop/other_20240104.txt", b"other client")
    task = file_task(conn, "drop/CLIENT_*")
    ProjectParameter.objects.create(project=task.project, key="CLIENT", value="acme")
    task.source_path = "drop/CLIENT_[!0-9]*"
    task.save()
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert {f.name: f.stored.read() for f in run.files.all()} == {"acme_blob.bin": BINARY}

    # Date pattern plus parameter: yesterday's file of this client only.
    task.source_path = "drop/CLIENT_%Y%m%d-1.txt"
    task.save()
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert {f.name: f.stored.read() for f in run.files.all()} == {"acme_20240104.txt": LATIN1}
    assert run.files.get().rows is None


def test_same_names_from_two_folders_are_numbered(source):
    conn, folder = source
    run = run_task(file_task(conn, "in/*/orders_20240105_*.csv"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    stored = {f.name: f.stored.read() for f in run.files.all()}
    assert stored == {"orders_20240105_a.csv": b"year\n", "orders_20240105_c.csv": b"deeper\n"}


def test_no_match_fails_naming_the_pattern(source):
    conn, _ = source
    run = run_task(file_task(conn, "in/orders_%Y%m%d+2_*.csv"))
    assert run.status == RunStatus.FAILED
    assert run.error_stage == "source"
    assert run.error == f"No file matched in/orders_20240107_*.csv on {conn}."
    assert run.permanent is False  # the file may still come: a retry can help


def test_no_match_is_fine_when_the_task_says_so(source):
    conn, _ = source
    run = run_task(file_task(conn, "in/none_*.csv", source_missing_ok=True))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.files.count() == 0
    assert f"No file matched in/none_*.csv on {conn}; the task says that is fine, so nothing will be delivered." in messages(run)


QUOTED = (
    'id,name,comment\r\n'
    '1,"Smith, Ann","said ""hi"""\r\n'
    '2,Bob,"two\r\nlines, and a | pipe"\r\n'
    '3,Zoë,\r\n'
)
PIPED = (
    'id|name|comment\n'
    '1|Smith, Ann|"said ""hi"""\n'
    '2|Bob|"two\r\nlines, and a | pipe"\n'
    '3|Zoë|\n'
)


@pytest.mark.parametrize("kind", ["sftp", "ftp", "smb"])
def test_redelimiting_keeps_quoted_fields_intact(kind, request, tmp_path):
    conn, folder = file_connection(request, kind, tmp_path)
    put(folder, "in/people.csv", QUOTED.encode("utf-8"))
    task = file_task(conn, "in/people.csv", source_delimiter=",", output_type="text", output_delimiter="|")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    record = run.files.get()
    assert (record.name, record.rows) == ("people.csv", 3)
    assert record.stored.read().decode("utf-8") == PIPED


def test_redelimiting_a_large_file_streams_every_row(sshd, request, tmp_path):
    conn, folder = file_connection(request, "sftp", tmp_path)
    rows = 20_000
    body = "n,text\n" + "".join(f'{i},"line {i}, with comma"\n' for i in range(rows))
    put(folder, "big.csv", body.encode())
    task = file_task(conn, "big.csv", source_delimiter=",", output_type="text", output_delimiter="\\t", source_headers=True)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    record = run.files.get()
    assert record.rows == rows
    lines = record.stored.read().decode().splitlines()
    assert lines[0] == "n\ttext" and lines[-1] == f"{rows - 1}\tline {rows - 1}, with comma"
    assert len(lines) == rows + 1


def test_redelimiting_names_the_line_that_is_not_text(ftp_server, request, tmp_path):
    conn, folder = file_connection(request, "ftp", tmp_path)
    put(folder, "bad.csv", b"a,b\n1,2\n3,\xff\n")
    run = run_task(file_task(conn, "bad.csv", source_delimiter=",", output_type="csv"))
    assert run.status == RunStatus.FAILED
    assert "bad.csv is not utf-8 text" in run.error
