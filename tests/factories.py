"""Small builders for the objects most tests need; keyword arguments override defaults."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from connections.models import Connection, Organization
from projects.models import Project
from tasks.models import CodeLocation, CodeRole, Destination, Task


def organization(name: str = "Acme") -> Organization:
    return Organization.objects.get_or_create(name=name)[0]


def connection(kind: str, name: str | None = None, org: str = "Acme", **fields) -> Connection:
    conn = Connection(organization=organization(org), name=name or kind, kind=kind, **fields)
    conn.full_clean()
    conn.save()
    return conn


def sftp_connection(server, **overrides) -> Connection:
    fields = dict(host=server.host, port=server.port, username=server.username, password=server.password,
                  host_key=server.host_key_line, folder=str(server.root))
    fields.update(overrides)
    return connection("sftp", **fields)


def project(name: str = "Nightly", owner=None, **fields) -> Project:
    if owner is None:
        owner = get_user_model().objects.get_or_create(username="owner")[0]
    return Project.objects.create(name=name, owner=owner, **fields)


def query_task(proj: Project, source: Connection, sql: str, name: str = "orders", **fields) -> Task:
    task = Task.objects.create(project=proj, name=name, source_kind="database", source_connection=source,
                               output_type=fields.pop("output_type", "csv"), **fields)
    CodeLocation.objects.create(task=task, role=CodeRole.SOURCE, location="inline", text=sql)
    return task


def destination(task: Task, conn: Connection, **fields) -> Destination:
    return Destination.objects.create(task=task, kind=conn.kind, connection=conn, **fields)
