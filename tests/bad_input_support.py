"""What the bad-input cases build on (tests/test_bad_input.py): a place to run tasks, and what must stay as it was."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from connections.models import GpgKey
from projects.models import Project
from runs.models import Run, RunFile, RunStatus, Trigger
from tasks.configuration.exporter import task_data
from tasks.models import CodeLocation, Task, TaskParameter
from tests import factories
from tests.delivery_support import sqlite_source
from tests.file_servers import ftp_conn, put, smb_conn
from tests.servers_common import free_port

PREVIOUS = b"id,name\n1,from an earlier run\n"


# --------------------------------------------------------------------------
# What every run case builds on
# --------------------------------------------------------------------------


@dataclass
class Site:
    request: pytest.FixtureRequest
    tmp_path: Path
    outbox: Path
    values: dict = field(default_factory=dict)

    def server(self, name: str):
        return self.request.getfixturevalue(name)

    def project(self) -> Project:
        owner = get_user_model().objects.get_or_create(username="owner")[0]
        return Project.objects.get_or_create(name="Bad input", defaults={"owner": owner})[0]

    def query(self, sql: str, conn=None, **fields) -> Task:
        conn = conn or sqlite_source(self.server("sqlite_odbc"), name="src")
        return factories.query_task(self.project(), conn, sql, name="orders", **fields)

    def ok_query(self, **fields) -> Task:
        return self.query("select id, customer from orders order by id", **fields)

    def script(self, text: str, **fields) -> Task:
        self.server("processing_venvs")
        task = self.ok_query(**fields)
        CodeLocation.objects.create(task=task, role="processing", location="inline", text=text)
        return task

    def ftp_file(self, name: str, data: bytes, **fields) -> Task:
        server = self.server("ftp_server")
        put(server.root, f"in/{name}", data)
        fields.setdefault("source_path", f"in/{name}")
        return Task.objects.create(project=self.project(), name="files", source_kind="ftp", source_connection=ftp_conn(server), **fields)

    def sftp(self, **overrides):
        sshd = self.server("sshd")
        self.values.update(port=overrides.get("port", sshd.port), fingerprint=sshd.host_key_fingerprint_sha256)
        return factories.sftp_connection(sshd, name="drop", **overrides)


@dataclass
class Kept:
    """What was there before a run: the earlier run's stored file and the file at the destination."""

    record: RunFile
    outbox: Path
    settings: str

    def assert_intact(self, task: Task) -> None:
        with self.record.stored.open("rb") as fh:
            assert fh.read() == PREVIOUS
        assert sorted(os.listdir(self.outbox)) == ["orders.csv"]  # nothing new, nothing partial
        assert (self.outbox / "orders.csv").read_bytes() == PREVIOUS
        assert settings_of(task) == self.settings


def settings_of(task: Task) -> str:
    task = Task.objects.get(pk=task.pk)
    return json.dumps([task_data(task, include_secrets=True), task.enabled], default=str)


def keep(task: Task, outbox: Path) -> Kept:
    now = timezone.now() - timedelta(days=1)
    earlier = Run.objects.create(task=task, status=RunStatus.SUCCEEDED, trigger=Trigger.SCHEDULE, intended_at=now, due_at=now,
                                 started_at=now, finished_at=now)
    record = RunFile(run=earlier, name="orders.csv", size=len(PREVIOUS), rows=1, md5=hashlib.md5(PREVIOUS).hexdigest(),
                     sha256=hashlib.sha256(PREVIOUS).hexdigest())
    record.stored.save("orders.csv", ContentFile(PREVIOUS), save=True)
    return Kept(record, outbox, settings_of(task))


# --------------------------------------------------------------------------
# Runs that must fail, with their exact messages
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fails:
    id: str
    build: Callable[[Site], Task]
    stage: str
    message: str  # exact; {placeholders} come from Site.values and the run ({run}, {workdir})
    permanent: bool = True
    outbox: bool = True  # also deliver to the outbox (where nothing may change)


def maria(site: Site, **odbc) -> object:
    db = site.server("mariadb_odbc")
    parts = {"Server": "127.0.0.1", "Port": "3306", "Database": db.name, "Uid": db.user, "Pwd": db.password, **odbc}
    site.values.update(user=db.user, **{k.lower(): v for k, v in odbc.items()})
    text = "Driver={MariaDB Unicode};" + "".join(f"{k}={v};" for k, v in parts.items())
    return factories.connection("database", name="maria", dialect="mysql", odbc=text, login_timeout=5)


def expired_key(site: Site) -> GpgKey:
    home = site.server("gpg_home")
    key = GpgKey.objects.create(name="vendor", public_key=home.public_key_armored, fingerprint=home.fingerprint,
                                expires_at=datetime(2024, 1, 31, 12, tzinfo=timezone.get_current_timezone()))
    site.values.update(fp=home.fingerprint)
    return key


def with_destination(conn_factory: Callable[[Site], object], **fields) -> Callable[[Site], Task]:
    def build(site: Site) -> Task:
        task = site.ok_query(output_name="orders")
        factories.destination(task, conn_factory(site), **fields)
        return task

    return build


def other_host_key(site: Site) -> str:
    """Another real ed25519 key (the client's): a well-formed pin that is not the server's."""
    kind, key = Path(f"{site.server('sshd').client_key_path}.pub").read_text().split()[:2]
    return f"{kind} {key}"


def ftp_box(site: Site, **overrides):
    server = site.server("ftp_server")
    site.values["ftp"] = server.port
    return ftp_conn(server, name="box", **overrides)


def with_smb_destination(**fields) -> Callable[[Site], Task]:
    def build(site: Site) -> Task:
        task = site.ok_query(**fields)
        factories.destination(task, smb_conn(site.server("smb_server"), name="share"))
        return task

    return build


def closed_port(site: Site) -> int:
    site.values["closed"] = port = free_port()
    return port


def with_param(task: Task, key: str, value: str) -> Task:
    TaskParameter.objects.create(task=task, key=key, value=value)
    return task
