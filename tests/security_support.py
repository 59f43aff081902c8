"""Shared by the permission, CSRF and canary tests: the URLs to try, a small world to try them on, a state fingerprint.

The URLs come from the URL configuration itself (the `courier` namespace and
every model registered in the admin), so a new page, action or admin model
is covered without editing the tests — or makes them fail until its
expected permissions are written down.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from connections.models import GpgKey
from projects import views as project_views
from projects.models import Project
from runs import views as run_views
from runs.models import LateAlert, Run, RunFile, RunLog, RunStatus, SiteState, Trigger
from tasks import views as task_views
from tasks.models import CodeLocation, CodeRole, Task
from tests import factories

# The slug of each action URL, read from the views' own tables (the duplicate actions are handled outside them).
ACTION_SLUGS = {
    "task_action": [*task_views.ACTIONS, "duplicate"],
    "project_action": [*project_views.PROJECT_ACTIONS, "duplicate"],
    "scheduler_action": list(run_views.SCHEDULER_ACTIONS),
}
ADMIN_VIEWS = ("changelist", "add", "change", "delete", "history")
FILE_BYTES = b"id,name\n1,Ann\n"


@dataclass(frozen=True)
class Endpoint:
    name: str  # URL name in the courier namespace
    action: str = ""  # the slug of an action URL
    params: tuple[str, ...] = ()  # the URL's other arguments, e.g. ("pk",)

    @property
    def id(self) -> str:
        return f"{self.name}:{self.action}" if self.action else self.name


def courier_patterns() -> list[URLPattern]:
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "courier":
            return list(entry.url_patterns)
    raise AssertionError("no URL namespace “courier” in etlsite.urls")


def courier_endpoints() -> list[Endpoint]:
    found = []
    for pattern in courier_patterns():
        params = tuple(name for name in pattern.pattern.converters if name != "action")
        if "action" in pattern.pattern.converters:
            found += [Endpoint(pattern.name, slug, params) for slug in ACTION_SLUGS[pattern.name]]
        else:
            found.append(Endpoint(pattern.name, params=params))
    return found


def admin_models() -> list[str]:
    return sorted(model._meta.label_lower for model in admin.site._registry)


def admin_actions() -> list[tuple[str, str]]:
    """(model label, action name) for every action of every registered model admin, delete_selected included."""
    found = []
    for model, model_admin in admin.site._registry.items():
        if model_admin.actions is None:
            continue  # Django offers no action on this model's list
        names = {name for _, name, _ in model_admin._get_base_actions()}
        found += [(model._meta.label_lower, name) for name in sorted(names)]
    return sorted(found)


def admin_own_views() -> list[tuple[str, str]]:
    """(model label, URL name) of each view a model admin adds to Django's own (ModelAdmin.get_urls), e.g. “Pin this key”."""
    found = []
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        standard = {f"{info}_{view}" for view in ADMIN_VIEWS}
        found += [(model._meta.label_lower, p.name) for p in model_admin.get_urls() if p.name and p.name not in standard]
    return sorted(found)


def model_for(endpoint: Endpoint, param: str):
    """What a URL argument points at: `project_pk` a project; `pk` the object the URL's name begins with."""
    if param == "project_pk":
        return Project
    for prefix, model in (("task", Task), ("project", Project), ("runfile", RunFile), ("run", Run), ("file", RunFile)):
        if endpoint.name.startswith(prefix):
            return model
    raise AssertionError(f"tests/security_support.py: which object does {endpoint.name}'s “{param}” name?")


# --------------------------------------------------------------------------
# The world the URLs are tried on
# --------------------------------------------------------------------------


@dataclass
class World:
    task: Task
    project: Project
    run: Run
    file: RunFile
    objects: dict  # model label → one instance, for the admin's change/delete/history pages

    def object_for(self, endpoint: Endpoint, param: str):
        return {Task: self.task, Project: self.project, RunFile: self.file, Run: self.run}[model_for(endpoint, param)]

    def url(self, endpoint: Endpoint) -> str:
        kwargs = {param: self.object_for(endpoint, param).pk for param in endpoint.params}
        if endpoint.action:
            kwargs["action"] = endpoint.action
        return reverse(f"courier:{endpoint.name}", kwargs=kwargs)

    def admin_url(self, label: str, view: str) -> str:
        app, model = label.split(".")
        args = [self.objects[label].pk] if view in ("change", "delete", "history") else []
        return reverse(f"admin:{app}_{model}_{view}", args=args)


def build_world(tmp_path, owner) -> World:
    """One of everything a page or admin view can be about, without running anything."""
    project = factories.project("Nightly", owner=owner, cron="0 6 * * *")
    source = factories.connection("database", name="warehouse", dialect="sqlite", odbc=f"Driver={{SQLite3}};Database={tmp_path}/none.db;")
    task = factories.query_task(project, source, "select 1 as one", name="orders")
    factories.destination(task, factories.connection("folder", name="box", folder=str(tmp_path / "box")))
    now = timezone.now()
    run = Run.objects.create(task=task, status=RunStatus.SUCCEEDED, trigger=Trigger.MANUAL, intended_at=now,
                             due_at=now, started_at=now, finished_at=now + timedelta(seconds=2), rows=1)
    RunLog.objects.create(run=run, stage="finish", message="Succeeded.")
    record = RunFile(run=run, name="orders.csv", size=len(FILE_BYTES), rows=1,
                     md5=hashlib.md5(FILE_BYTES).hexdigest(), sha256=hashlib.sha256(FILE_BYTES).hexdigest())
    record.stored.save("orders.csv", ContentFile(FILE_BYTES), save=True)
    SiteState.get()
    objects = {
        "auth.user": owner, "auth.group": Group.objects.create(name="operators"),
        "connections.organization": source.organization, "connections.connection": source,
        "connections.gpgkey": GpgKey.objects.create(name="vendor-key", public_key="-----BEGIN PGP PUBLIC KEY BLOCK-----\n…"),
        "projects.project": project, "tasks.task": task, "runs.run": run,
        "runs.latealert": LateAlert.objects.create(task=task, day=now.date(), expected_at=now, late_mail="sent to a@example.test"),
    }
    objects.update(_django_q_rows(now))
    objects["admin.logentry"] = LogEntry.objects.log_actions(owner.pk, [task], CHANGE, change_message="Made for the test.",
                                                             single_object=True)
    return World(task=task, project=project, run=run, file=record, objects=objects)


def _django_q_rows(now) -> dict:
    from django_q.models import Failure, OrmQ, Schedule, Success

    common = {"func": "runs.jobs.execute_run", "started": now, "stopped": now, "args": "(1,)"}
    return {
        "django_q.schedule": Schedule.objects.filter(name__startswith="courier:").first()
        or Schedule.objects.create(name="courier:test", func="runs.jobs.fire_project"),
        "django_q.success": Success.objects.create(id="a" * 32, name="run-1", success=True, **common),
        "django_q.failure": Failure.objects.create(id="b" * 32, name="run-2", success=False, **common),
        "django_q.ormq": OrmQ.objects.create(key="courier", payload="x", lock=now),
    }


# --------------------------------------------------------------------------
# Did anything change?
# --------------------------------------------------------------------------

IGNORED_TABLES = {"django_session"}  # logging in writes here


def fingerprint() -> dict[str, str]:
    """A digest of every table's rows (sessions aside): equal before and after means nothing changed.

    Kept per table, so that a failed comparison names the tables that changed.
    """
    found = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table in IGNORED_TABLES:
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found[table] = hashlib.sha256(repr(sorted(map(repr, cursor.fetchall()))).encode()).hexdigest()[:16]
    return found


# --------------------------------------------------------------------------
# Tasks with code that runs (SPEC §8: writing it is a privilege of its own)
# --------------------------------------------------------------------------


@dataclass
class CodeWorld:
    project: Project
    tasks: dict[str, Task]  # sql (inline SQL only), script, package, ssh, remote_sql
    conns: dict[str, object]  # by kind: database, ssh, sftp, web, folder
    outbox: object  # the folder the sql task delivers to


def build_code_world(tmp_path, owner, odbc: str) -> CodeWorld:
    """One task for each kind of code, in a project of their own, and one task whose only code is inline SQL."""
    project = factories.project("Scripts", owner=owner)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    conns = {
        "database": factories.connection("database", name="ledger", dialect="sqlite", odbc=odbc),
        "ssh": factories.connection("ssh", name="shell", host="ssh.example.test", username="u"),
        "sftp": factories.connection("sftp", name="code-drop", host="sftp.example.test", username="u", password="pw"),
        "web": factories.connection("web", name="raw", url="https://code.example.test/"),
        "folder": factories.connection("folder", name="outbox", folder=str(outbox)),
    }
    sql = factories.query_task(project, conns["database"], "select 1 as one", name="sql", output_name="one")
    factories.destination(sql, conns["folder"])
    script = Task.objects.create(project=project, name="script", source_kind="python", processing_requirements="tinybase")
    CodeLocation.objects.create(task=script, role=CodeRole.PROCESSING, location="inline", text="print('trusted')")
    package = factories.query_task(project, conns["database"], "select 2 as two", name="package", processing_entry="tool/main.py",
                                  script_network=False)
    CodeLocation.objects.create(task=package, role=CodeRole.PROCESSING, location="sftp", connection=conns["sftp"], path="pkg/tool.zip")
    ssh = Task.objects.create(project=project, name="ssh", source_kind="ssh", source_connection=conns["ssh"])
    CodeLocation.objects.create(task=ssh, role=CodeRole.SOURCE, location="inline", text="ls -l /data")
    remote_sql = Task.objects.create(project=project, name="remote_sql", source_kind="database", source_connection=conns["database"])
    CodeLocation.objects.create(task=remote_sql, role=CodeRole.SOURCE, location="web", connection=conns["web"],
                                url="https://code.example.test/q.sql")
    tasks = {"sql": sql, "script": script, "package": package, "ssh": ssh, "remote_sql": remote_sql}
    return CodeWorld(project=project, tasks=tasks, conns=conns, outbox=outbox)
