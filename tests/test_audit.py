"""The audit trail (SPEC §8): every manual action and change, with user and time, in the admin and on the object's page.

One test per kind of action: the Courier pages, the admin's actions and
forms, and the commands (logged as the inactive `courier-system` user with
the operating-system account named in the message).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from connections import audit
from connections.models import Connection
from etlsite.pages import action_history
from projects.models import Project
from runs.models import Run, RunFile, RunStatus, SiteState, Trigger
from tasks.models import Task
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def started():
    """The moment the test began: every entry it makes is at or after this."""
    return timezone.now() - timedelta(seconds=1)


@pytest.fixture
def task(tmp_path) -> Task:
    project = factories.project("Audited", cron="0 6 * * *")
    source = factories.connection("database", name="db", dialect="sqlite", odbc=f"Driver={{SQLite3}};Database={tmp_path}/x.db;")
    made = factories.query_task(project, source, "select 1 as one", name="daily")
    factories.destination(made, factories.connection("folder", name="box", folder=str(tmp_path / "box")))
    return made


def pending_retry(task: Task) -> Run:
    now = timezone.now()
    return Run.objects.create(task=task, status=RunStatus.RETRY_SCHEDULED, trigger=Trigger.RETRY, attempt=2,
                              intended_at=now, due_at=now + timedelta(hours=1))


def entries(obj) -> list[LogEntry]:
    content_type = ContentType.objects.get_for_model(obj)
    return list(LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk)).order_by("id"))


def logged(obj, user, text: str, started, flag: int = CHANGE) -> LogEntry:
    """The entry for `obj` whose message holds `text`: by `user`, now, with the right flag."""
    found = [e for e in entries(obj) if text in e.get_change_message()]
    assert found, f"no log entry with {text!r} for {obj!r}: {[e.get_change_message() for e in entries(obj)]}"
    entry = found[-1]
    assert entry.user_id == user.pk
    assert entry.action_flag == flag
    assert started <= entry.action_time <= timezone.now()
    return entry


def assert_in_admin_history(client, superuser, obj, text: str) -> None:
    client.force_login(superuser)
    meta = obj._meta
    page = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_history", args=[obj.pk]))
    assert page.status_code == 200
    assert html.escape(text) in page.content.decode()


def assert_in_audit_trail(client, superuser, text: str) -> None:
    client.force_login(superuser)
    page = client.get(reverse("admin:admin_logentry_changelist"))
    assert page.status_code == 200
    assert html.escape(text) in page.content.decode()


def command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def system():
    return audit.system_user()


# --------------------------------------------------------------------------
# Courier pages
# --------------------------------------------------------------------------

TASK_PAGE_ACTIONS = [
    ("run", "Started run"),
    ("disable", "Disabled."),
    ("enable", "Enabled."),
    ("reschedule", "Rebuilt the schedules"),
    ("cancel-retry", "Cancelled the retry"),
    ("duplicate", "Duplicated as"),
]


@pytest.mark.parametrize("action, text", TASK_PAGE_ACTIONS)
def test_a_task_page_action_is_logged_and_shown_on_the_task_page(client, superuser, task, started, action, text):
    if action == "cancel-retry":
        pending_retry(task)
    client.force_login(superuser)
    response = client.post(reverse("courier:task_action", args=[task.pk, action]))
    assert response.status_code == 302
    logged(task, superuser, text, started)
    page = client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()
    assert html.escape(text) in page and superuser.username in page
    assert_in_admin_history(client, superuser, task, text)


PROJECT_PAGE_ACTIONS = [
    ("run-all", "Started the enabled tasks"),
    ("disable-all", "Disabled all tasks"),
    ("enable-all", "Enabled all tasks"),
    ("reschedule", "Rebuilt the project's schedules"),
    ("duplicate", "Duplicated as"),
]


@pytest.mark.parametrize("action, text", PROJECT_PAGE_ACTIONS)
def test_a_project_page_action_is_logged_and_shown_on_the_project_page(client, superuser, task, started, action, text):
    project = task.project
    client.force_login(superuser)
    assert client.post(reverse("courier:project_action", args=[project.pk, action])).status_code == 302
    logged(project, superuser, text, started)
    page = client.get(reverse("courier:project_detail", args=[project.pk])).content.decode()
    assert html.escape(text) in page
    assert_in_admin_history(client, superuser, project, text)


@pytest.mark.parametrize("action, text", [("pause", "Paused the scheduler"), ("resume", "Resumed the scheduler")])
def test_pause_and_resume_on_the_scheduler_page_are_logged_there(client, superuser, started, action, text):
    client.force_login(superuser)
    assert client.post(reverse("courier:scheduler_action", args=[action])).status_code == 302
    logged(SiteState.get(), superuser, text, started)
    assert html.escape(text) in client.get(reverse("courier:scheduler")).content.decode()
    assert_in_audit_trail(client, superuser, text)


def test_a_resend_is_logged_on_its_task(client, superuser, task, started):
    run = Run.objects.create(task=task, status=RunStatus.SUCCEEDED, trigger=Trigger.MANUAL, intended_at=started, due_at=started)
    data = b"a,b\n"
    record = RunFile(run=run, name="out.csv", size=len(data), rows=1, md5=hashlib.md5(data).hexdigest(),
                     sha256=hashlib.sha256(data).hexdigest())
    record.stored.save("out.csv", ContentFile(data), save=True)
    client.force_login(superuser)
    assert client.post(reverse("courier:file_resend", args=[record.pk])).status_code == 302
    logged(task, superuser, "Resent out.csv", started)


# Edits on the New/Edit pages log what changed: tests/test_pages_task_form.py
# (test_editing_changes_the_task_keeps_secrets_and_logs_what_changed) and tests/test_pages_projects.py.


def test_deleting_a_task_on_its_page_is_logged_with_its_name(client, superuser, task, started):
    client.force_login(superuser)
    pk = task.pk
    assert client.post(reverse("courier:task_delete", args=[pk])).status_code == 302
    entry = LogEntry.objects.get(object_id=str(pk), action_flag=DELETION)
    assert entry.user == superuser and entry.object_repr == "Audited/daily"


# --------------------------------------------------------------------------
# The admin: its actions and forms (connections)
# --------------------------------------------------------------------------

# Tasks and projects have no admin actions: their pages' controls (above) are the one UI (tests/test_one_ui.py).
ADMIN_ACTIONS = [
    ("connections", "connection", "test_connections", "Tested:", CHANGE),
]


@pytest.mark.parametrize("app, model, action, text, flag", ADMIN_ACTIONS)
def test_an_admin_action_is_logged_and_shown_in_the_admin_history(client, superuser, task, started, app, model, action, text, flag):
    target = {"connection": task.source_connection}[model]
    client.force_login(superuser)
    response = client.post(reverse(f"admin:{app}_{model}_changelist"), {"action": action, "_selected_action": [target.pk]})
    assert response.status_code == 302
    logged(target, superuser, text, started, flag)
    assert_in_admin_history(client, superuser, target, text)


DUPLICATES = [
    ("task page", lambda t: (reverse("courier:task_action", args=[t.pk, "duplicate"]), {}), "task"),
    ("project page", lambda t: (reverse("courier:project_action", args=[t.project_id, "duplicate"]), {}), "project"),
]


@pytest.mark.parametrize("way, request_for, what", DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_a_duplicate_is_logged_once_on_the_copy_and_once_on_the_original(client, superuser, task, started, way, request_for, what):
    """duplicate_task / duplicate_project write the two lines themselves, so no caller adds a second pair."""
    client.force_login(superuser)
    url, data = request_for(task)
    assert client.post(url, data).status_code == 302
    original = task if what == "task" else task.project
    copy = type(original).objects.exclude(pk=original.pk).get()
    assert [(e.user_id, e.action_flag, e.get_change_message()) for e in entries(copy)] == [
        (superuser.pk, ADDITION, f"Duplicated from {original.name} (id {original.pk}); "
                                 + ("disabled." if what == "task" else "its tasks are disabled.")),
    ]
    assert [(e.user_id, e.action_flag, e.get_change_message()) for e in entries(original)] == [
        (superuser.pk, CHANGE, f"Duplicated as {copy.name}."),
    ]


def test_changing_a_connection_in_the_admin_is_logged_without_its_secret(client, superuser, started):
    conn = factories.connection("ftp", name="vendor", host="ftp.example.test", username="u", password="Old-Secret-123")
    client.force_login(superuser)
    form = {"organization": conn.organization_id, "name": "vendor", "kind": "ftp", "description": "", "host": "ftp2.example.test",
            "port": "", "folder": "", "username": "u", "password": "New-Secret-456"}
    assert client.post(reverse("admin:connections_connection_change", args=[conn.pk]), form).status_code == 302
    entry = logged(conn, superuser, "Changed", started)
    assert "Old-Secret-123" not in entry.change_message and "New-Secret-456" not in entry.change_message
    assert_in_admin_history(client, superuser, conn, "Changed")


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

def test_the_system_user_cannot_log_in():
    user = system()
    assert not user.is_active and not user.has_usable_password() and not user.is_staff
    assert audit.system_user().pk == user.pk  # one account, made once


@pytest.mark.parametrize("args, target, text", [
    (lambda t: ["run_task", str(t)], "task", "Started run"),
    (lambda t: ["run_project", t.project.name], "project", "Started the enabled tasks"),
    (lambda t: ["cancel_retry", str(t)], "task", "Cancelled the retry"),
    (lambda t: ["reschedule", "--task", str(t)], "task", "Rebuilt the schedules of Audited"),
    (lambda t: ["reschedule", "--project", t.project.name], "project", "Rebuilt the schedules"),
    (lambda t: ["reschedule", "--all"], "site", "Rebuilt every schedule"),
    (lambda t: ["scheduler", "pause"], "site", "Paused the scheduler"),
    (lambda t: ["scheduler", "resume"], "site", "Resumed the scheduler"),
    (lambda t: ["orphans", "--delete"], "site", "Deleted 0 orphaned schedule entries"),
    (lambda t: ["reap_runs"], "site", "Marked 0 stuck run(s) as failed"),
    (lambda t: ["prune_history", "--days", "30"], "site", "Pruned the history"),
    (lambda t: ["rotate_secrets"], "site", "Re-encrypted"),
], ids=["run_task", "run_project", "cancel_retry", "reschedule-task", "reschedule-project", "reschedule-all",
        "pause", "resume", "orphans", "reap_runs", "prune_history", "rotate_secrets"])
def test_a_command_is_logged_as_the_system_user_naming_the_os_account(client, superuser, task, started, args, target, text):
    if args(task)[0] == "cancel_retry":
        pending_retry(task)
    command(*args(task))
    obj = {"task": task, "project": task.project, "site": SiteState.get()}[target]
    entry = logged(obj, system(), text, started)
    assert "from the command line by OS user " in entry.change_message
    shown = entry.get_change_message()
    if target == "site":
        assert_in_audit_trail(client, superuser, shown)
    else:
        assert_in_admin_history(client, superuser, obj, shown)
        assert entry in action_history(obj)  # what the object's Courier page lists


def test_import_config_logs_each_object_it_adds_or_changes_and_nothing_else(client, superuser, task, started, tmp_path):
    call_command("export_config", stdout=(out := io.StringIO()))
    data = json.loads(out.getvalue())
    data["projects"][0]["tasks"][0]["enabled"] = False  # a change to the task
    data["projects"].append({**data["projects"][0], "name": "Imported", "tasks": []})  # a new project
    path = tmp_path / "courier.json"
    path.write_text(json.dumps(data))
    command("import_config", str(path))

    logged(task, system(), f"Changed by importing {path}", started)
    new = Project.objects.get(name="Imported")
    logged(new, system(), f"Added by importing {path}", started, ADDITION)
    assert not entries(task.project)  # unchanged: no entry
    assert not entries(task.source_connection)
    assert_in_admin_history(client, superuser, new, "Added by importing")


def test_check_connections_logs_only_the_pinning_of_a_host_key(sshd, started):
    conn = factories.connection("sftp", name="pinme", host=sshd.host, port=sshd.port, username=sshd.username,
                                password=sshd.password, folder=str(sshd.root))
    with pytest.raises(CommandError):
        command("check_connections", "Acme/pinme")  # unpinned: shows the key, pins and logs nothing
    assert not entries(conn)
    command("check_connections", "Acme/pinme", "--pin", sshd.host_key_fingerprint_sha256)
    conn = Connection.objects.get(pk=conn.pk)
    assert conn.host_key == sshd.host_key_line
    logged(conn, system(), f"Pinned the host key ssh-ed25519 {sshd.host_key_fingerprint_sha256} of Acme/pinme", started)
    command("check_connections", "Acme/pinme")  # nothing changes the second time
    assert len(entries(conn)) == 1


def test_connections_audit_is_the_one_writer_of_the_admin_log():
    """Pages, services and commands of every app write through connections/audit.py (the admin's own log_change aside)."""
    root = Path(__file__).resolve().parent.parent
    writes = re.compile(r"\blog_actions\(|LogEntry\.objects\.(create|bulk_create)\(|\bLogEntry\(")
    writers = sorted(str(path.relative_to(root)) for app in ("connections", "projects", "tasks", "runs", "etlsite")
                     for path in (root / app).rglob("*.py") if writes.search(path.read_text()))
    assert writers == ["connections/audit.py"]
