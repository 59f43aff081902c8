"""The permission matrix (SPEC §8): every Courier page and action, every admin view and admin action, every kind of user.

URLs are read from the URL configuration (tests/security_support.py); the
expected rights are written down here, and a URL, admin model or admin
action without an entry fails `test_every_url_and_action_has_its_rule`.

Users: anonymous, a logged-in user who is not staff (both sent to the login
page), staff without permissions, staff who may only view, staff who may
view and run, staff with the task rights (runner), staff with every project
and task right (manager), and a superuser. Connections, GPG keys, the
scheduler tools, django-q2's lists and the audit trail are for superusers only.
The admin's task and project pages (list, add, change, delete) lead whoever
they let in to Courier's page (302), and refuse the others as before.

Writing code that runs is a right of its own (the last part of this file):
the runner, who lacks it, is refused every change of code through every
route, and the same requests go through for a coder who holds it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse

from runs.models import RunStatus
from runs.runner import execute
from tasks import codeguard
from tasks.models import Task
from tests.form_support import (
    Conn,
    browser_form,
    duplicate,
    form_on,
    page_edit,
    page_new,
    project_duplicate,
)
from tests.security_support import (
    ADMIN_VIEWS,
    CodeWorld,
    Endpoint,
    admin_actions,
    admin_models,
    admin_own_views,
    build_code_world,
    build_world,
    courier_endpoints,
    fingerprint,
)

pytestmark = pytest.mark.django_db

Rule = Callable[[object], bool]

# --------------------------------------------------------------------------
# Who may do what
# --------------------------------------------------------------------------


def perm(*codes: str) -> Rule:
    return lambda user: all(user.has_perm(code) for code in codes)


def any_perm(*codes: str) -> Rule:
    return lambda user: any(user.has_perm(code) for code in codes)


def superuser(user) -> bool:
    return user.is_superuser


def never(user) -> bool:
    return False


GET, POST, FORM = "GET", "POST", "FORM"  # a page; a POST-only action; a form (GET shows it, POST saves)

COURIER_RULES: dict[str, tuple[str, Rule]] = {
    "dashboard": (GET, perm("tasks.view_task")),
    "run_errored": (POST, perm("tasks.run_task")),
    "scheduler": (GET, superuser),
    **{f"scheduler_action:{slug}": (POST, superuser) for slug in ("pause", "resume", "resume-catch-up", "reschedule-all", "delete-orphans", "reset-stuck")},
    "run_log": (GET, perm("tasks.view_task")),
    "file_resend": (POST, perm("tasks.run_task")),
    "runfile_download": (GET, perm("runs.view_run")),
    "task_list": (GET, perm("tasks.view_task")),
    "my_tasks": (GET, perm("tasks.view_task")),
    "task_detail": (GET, perm("tasks.view_task")),
    "task_live": (GET, perm("tasks.view_task")),
    "task_edit": (FORM, perm("tasks.change_task")),
    "task_delete": (FORM, perm("tasks.delete_task")),
    "task_action:run": (POST, perm("tasks.run_task")),
    "task_action:cancel-retry": (POST, perm("tasks.run_task")),
    "task_action:release": (POST, perm("tasks.run_task")),
    "task_action:discard": (POST, perm("tasks.run_task")),
    "task_action:stop-waiting": (POST, perm("tasks.run_task")),
    "task_action:reschedule": (POST, perm("tasks.change_task")),
    "task_action:enable": (POST, perm("tasks.change_task")),
    "task_action:disable": (POST, perm("tasks.change_task")),
    "task_action:duplicate": (POST, perm("tasks.add_task")),
    "project_list": (GET, perm("projects.view_project")),
    "my_projects": (GET, perm("projects.view_project")),
    "project_new": (FORM, perm("projects.add_project")),
    "project_detail": (GET, perm("projects.view_project")),
    "project_edit": (FORM, perm("projects.change_project")),
    "project_delete": (FORM, perm("projects.delete_project", "tasks.delete_task")),
    "task_new": (FORM, perm("tasks.add_task")),
    "project_action:enable-all": (POST, perm("tasks.change_task")),
    "project_action:disable-all": (POST, perm("tasks.change_task")),
    "project_action:run-all": (POST, perm("tasks.run_task")),
    "project_action:reschedule": (POST, perm("projects.change_project")),
    "project_action:duplicate": (POST, perm("projects.add_project", "tasks.add_task")),
}


def model_rules(label: str, **overrides: Rule) -> dict[str, Rule]:
    """Django's model permissions: viewing needs view or change, the rest their own right."""
    app, model = label.split(".")
    view = any_perm(f"{app}.view_{model}", f"{app}.change_{model}")
    rules = {"changelist": view, "add": perm(f"{app}.add_{model}"), "change": view,
             "delete": perm(f"{app}.delete_{model}"), "history": view}
    return {**rules, **overrides}


SUPERUSERS_ONLY = dict.fromkeys(ADMIN_VIEWS, superuser)
# Models whose objects live on Courier's pages: these admin views answer, to whom they let in, with Courier's page (302).
LEADS_TO_COURIER = {"projects.project": ("changelist", "add", "change", "delete"), "tasks.task": ("changelist", "add", "change", "delete")}
ADMIN_RULES: dict[str, dict[str, Rule]] = {
    "auth.user": model_rules("auth.user"),
    "auth.group": model_rules("auth.group"),
    "projects.project": model_rules("projects.project"),
    "tasks.task": model_rules("tasks.task"),
    "runs.run": model_rules("runs.run", add=never),  # runs are made by running, never by hand
    "runs.latealert": model_rules("runs.latealert", add=never),  # made by the watch, never by hand
    "connections.organization": SUPERUSERS_ONLY,
    "connections.connection": SUPERUSERS_ONLY,
    "connections.gpgkey": SUPERUSERS_ONLY,
    "django_q.schedule": SUPERUSERS_ONLY,
    "django_q.success": {**SUPERUSERS_ONLY, "add": never},
    "django_q.failure": {**SUPERUSERS_ONLY, "add": never},
    "django_q.ormq": {**SUPERUSERS_ONLY, "add": never},
    "admin.logentry": {**SUPERUSERS_ONLY, "add": never, "delete": never},  # the audit trail is read only
}

# The views a model admin adds to Django's own, each about one object: the buttons on a connection's page, a user's password.
ADMIN_OWN_RULES: dict[str, tuple[str, Rule]] = {
    "auth_user_password_change": (FORM, perm("auth.change_user")),
    "connections_connection_pin_host_key": (POST, superuser),
    "connections_connection_test": (POST, superuser),
}

# Tasks and projects have none: Courier's pages act on them (LEADS_TO_COURIER).
ACTION_RULES: dict[tuple[str, str], Rule] = {
    ("runs.run", "delete_selected"): perm("runs.delete_run"),
    ("runs.latealert", "delete_selected"): perm("runs.delete_latealert"),
    ("auth.user", "delete_selected"): perm("auth.delete_user"),
    ("auth.group", "delete_selected"): perm("auth.delete_group"),
    ("connections.connection", "test_connections"): superuser,
    ("connections.connection", "delete_selected"): superuser,
    ("connections.organization", "delete_selected"): superuser,
    ("connections.gpgkey", "delete_selected"): superuser,
    ("django_q.schedule", "delete_selected"): superuser,
    ("django_q.success", "delete_selected"): superuser,
    ("django_q.success", "resubmit_task"): superuser,
    ("django_q.failure", "delete_selected"): superuser,
    ("django_q.failure", "resubmit_task"): superuser,
    ("django_q.ormq", "delete_selected"): superuser,
    ("admin.logentry", "delete_selected"): never,
}

# --------------------------------------------------------------------------
# The users
# --------------------------------------------------------------------------

TASK_RIGHTS = ["view_task", "change_task", "add_task", "run_task", "view_project", "change_project", "add_project", "view_run"]
STAFF = {
    "staff_none": [],
    "staff_viewer": ["view_task", "view_project", "view_run"],
    "staff_operator": ["view_task", "run_task", "view_project", "view_run"],
    "staff_runner": TASK_RIGHTS,
    "staff_manager": [*TASK_RIGHTS, "delete_task", "delete_project", "delete_run"],
}
USERS = ["anonymous", "not_staff", *STAFF, "superuser"]
LOGGED_OUT = ("anonymous", "not_staff")  # the admin sends both to its login page


def make_user(django_user_model, name: str):
    if name == "anonymous":
        return None
    if name == "superuser":
        return django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    staff = name != "not_staff"
    user = django_user_model.objects.create_user(name, f"{name}@example.test", "pw", is_staff=staff)
    # Not staff, yet with every task right: the rights alone must not open the admin.
    codes = STAFF.get(name, TASK_RIGHTS)
    user.user_permissions.set(Permission.objects.filter(codename__in=codes))
    return django_user_model.objects.get(pk=user.pk)  # fresh: no cached permissions


@pytest.fixture
def world(tmp_path, django_user_model):
    owner = django_user_model.objects.create_user("owner", "owner@example.test", "pw")
    return build_world(tmp_path, owner)


@pytest.fixture
def users(django_user_model) -> dict:
    return {name: make_user(django_user_model, name) for name in USERS}


def sent_to_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/admin/login/")


def check_matrix(users: dict, cases: dict[str, object], check: Callable[..., str | None]) -> None:
    """`check(client, user, who, case, before)` for every case and user, each undone afterwards; all problems at once.

    One world and one login per user serve the whole matrix: each check runs
    inside a savepoint that is rolled back (a fresh database per user and URL
    made this file take minutes). `before` is the state every check compares
    with; `check` returns a problem or None.
    """
    clients = {}
    for who, user in users.items():
        clients[who] = Client()
        if user is not None:
            clients[who].force_login(user)
    before = fingerprint()
    problems = []
    for case_id, case in cases.items():
        for who, user in users.items():
            clients[who].cookies.pop("messages", None)  # each case reads only its own messages
            savepoint = transaction.savepoint()
            try:
                problem = check(clients[who], user, who, case, before)
            finally:
                transaction.savepoint_rollback(savepoint)
            if problem:
                problems.append(f"{case_id} as {who}: {problem}")
    assert not problems, "\n".join(problems)


def expect(response, status: int) -> str | None:
    return None if response.status_code == status else f"expected {status}, got {response.status_code}"


def logged_out(response) -> str | None:
    return None if sent_to_login(response) else f"not sent to the login page ({response.status_code})"


# --------------------------------------------------------------------------
# Every URL has a rule
# --------------------------------------------------------------------------


def test_every_url_and_action_has_its_rule():
    assert {e.id for e in courier_endpoints()} == set(COURIER_RULES), "write down the rights of new or removed Courier URLs"
    assert set(admin_models()) == set(ADMIN_RULES), "write down the rights of new or removed admin models"
    assert set(admin_actions()) == set(ACTION_RULES), "write down the rights of new or removed admin actions"
    assert {name for _, name in admin_own_views()} == set(ADMIN_OWN_RULES), "write down the rights of new or removed admin views"


# --------------------------------------------------------------------------
# Courier pages and actions
# --------------------------------------------------------------------------

ENDPOINTS = {e.id: e for e in courier_endpoints()}
STATE_CHANGING = {key: e for key, e in ENDPOINTS.items() if COURIER_RULES[key][0] in (POST, FORM)}


def test_get_on_every_courier_url(world, users):
    def check(client, user, who, endpoint: Endpoint, before):
        kind, rule = COURIER_RULES[endpoint.id]
        response = client.get(world.url(endpoint))
        if fingerprint() != before:
            return "a GET changed something"
        if who in LOGGED_OUT:
            return logged_out(response)
        if kind == POST:
            return expect(response, 405)  # an action never runs on GET, whoever asks
        return expect(response, 200 if rule(user) else 403)

    check_matrix(users, ENDPOINTS, check)


def test_post_to_every_courier_action_and_form(world, users):
    def check(client, user, who, endpoint: Endpoint, before):
        response = client.post(world.url(endpoint))
        if who in LOGGED_OUT:
            problem = logged_out(response)
        elif COURIER_RULES[endpoint.id][1](user):
            # Done (302 with a message) or a form shown again with its errors (200): never refused.
            return None if response.status_code in (200, 302) else f"allowed, yet answered {response.status_code}"
        else:
            problem = expect(response, 403)
        return problem or (None if fingerprint() == before else "a refused request changed something")

    check_matrix(users, STATE_CHANGING, check)


# --------------------------------------------------------------------------
# The admin's views and actions
# --------------------------------------------------------------------------

ADMIN_CASES = {f"{label}:{view}": (label, view) for label in admin_models() for view in ADMIN_VIEWS}
ACTIONS = admin_actions()


def test_every_admin_view(world, users):
    def check(client, user, who, case, before):
        label, view = case
        response = client.get(world.admin_url(label, view))
        if fingerprint() != before:
            return "a GET changed something"
        if who in LOGGED_OUT:
            return logged_out(response)
        if not ADMIN_RULES[label][view](user):
            return expect(response, 403)
        if view in LEADS_TO_COURIER.get(label, ()):
            return expect(response, 302) or (None if response["Location"].startswith("/admin/courier/") else f"led to {response['Location']}")
        return expect(response, 200)

    check_matrix(users, ADMIN_CASES, check)


def own_view_url(world, label: str, name: str) -> str:
    return reverse(f"admin:{name}", args=[world.objects[label].pk])


def test_every_admin_view_of_our_own(world, users):
    """An action never runs on GET, a form shows to whom may use it; a POST is done for them, refused for the others."""
    def check(client, user, who, case, before):
        label, name = case
        kind, rule = ADMIN_OWN_RULES[name]
        url = own_view_url(world, label, name)
        shown = client.get(url)
        if who in LOGGED_OUT:
            problem = logged_out(shown)
        else:
            problem = expect(shown, 405 if kind == POST else 200 if rule(user) else 403)
        if problem:
            return f"GET: {problem}"
        response = client.post(url)
        if who in LOGGED_OUT:
            problem = logged_out(response)
        elif rule(user):
            # Done (302 back to the page) or a form shown again with its errors (200): never refused.
            return None if response.status_code in (200, 302) else f"allowed, yet answered {response.status_code}"
        else:
            problem = expect(response, 403)
        return problem or (None if fingerprint() == before else "a refused request changed something")

    check_matrix(users, {name: (label, name) for label, name in admin_own_views()}, check)


def test_the_admin_index_lists_superuser_only_models_to_superusers_only(world, users):
    client = Client()
    client.force_login(users["staff_manager"])
    page = client.get("/admin/").content.decode()
    assert reverse("courier:task_list") in page and reverse("courier:project_list") in page
    for hidden in ("/admin/tasks/task/", "/admin/projects/project/", "/admin/connections/", "/admin/django_q/", "/admin/admin/logentry/"):
        assert hidden not in page
    client.force_login(users["superuser"])
    page = client.get("/admin/").content.decode()
    for shown in ("/admin/connections/connection/", "/admin/django_q/schedule/", "/admin/admin/logentry/"):
        assert shown in page


def test_every_admin_action(world, users):
    def offered(client, response) -> bool:
        return response.status_code == 302 and "No action selected" not in client.get(response["Location"]).content.decode()

    def check(client, user, who, case, before):
        label, action = case
        app, model = label.split(".")
        response = client.post(f"/admin/{app}/{model}/", {"action": action, "_selected_action": [world.objects[label].pk]})
        if who in LOGGED_OUT:
            problem = logged_out(response)
        elif not ADMIN_RULES[label]["changelist"](user):
            problem = expect(response, 403)
        elif ACTION_RULES[(label, action)](user):
            # Done (302) or, for a deletion, its confirmation page (200).
            ok = offered(client, response) or (action == "delete_selected" and response.status_code == 200)
            return None if ok else f"allowed, yet not done ({response.status_code})"
        else:
            # Not offered to this user: the list is shown again (200) or “No action selected” (302); nothing happens.
            problem = f"was run ({response.status_code})" if offered(client, response) else None
        return problem or (None if fingerprint() == before else "a refused action changed something")

    check_matrix(users, {f"{label}:{action}": (label, action) for label, action in ACTIONS}, check)


# --------------------------------------------------------------------------
# CSRF: every state change needs the token
# --------------------------------------------------------------------------

ADMIN_POSTS = [(label, view) for label in admin_models() for view in ("add", "change", "delete")]


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_every_courier_action_and_form_refuses_a_post_without_the_csrf_token(world, users):
    client = csrf_client(users["superuser"])
    before = fingerprint()
    answers = {key: client.post(world.url(e)).status_code for key, e in STATE_CHANGING.items()}
    assert answers == dict.fromkeys(answers, 403)
    assert fingerprint() == before


def test_every_admin_form_and_action_refuses_a_post_without_the_csrf_token(world, users):
    client = csrf_client(users["superuser"])
    before = fingerprint()
    answers = {f"{label}:{view}": client.post(world.admin_url(label, view), {"name": "x"}).status_code for label, view in ADMIN_POSTS}
    for label, action in ACTIONS:
        app, model = label.split(".")
        data = {"action": action, "_selected_action": [world.objects[label].pk], "post": "yes"}
        answers[f"{label}:{action}"] = client.post(f"/admin/{app}/{model}/", data).status_code
    for label, name in admin_own_views():
        answers[name] = client.post(own_view_url(world, label, name), {"fingerprint": "x"}).status_code
    assert answers == dict.fromkeys(answers, 403)
    assert fingerprint() == before


def test_with_the_csrf_token_the_same_post_goes_through(world, users):
    """The control for the two tests above: the refusal was the missing token, nothing else."""
    client = csrf_client(users["superuser"])
    client.get(world.url(Endpoint("task_detail", params=("pk",))))  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(world.url(Endpoint("task_action", "disable", ("pk",))), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    world.task.refresh_from_db()
    assert world.task.enabled is False


# --------------------------------------------------------------------------
# Writing code that runs: a right of its own
# --------------------------------------------------------------------------


@pytest.fixture
def code_world(tmp_path, django_user_model, sqlite_odbc) -> CodeWorld:
    owner = django_user_model.objects.create_user("owner", "owner@example.test", "pw")
    return build_code_world(tmp_path, owner, sqlite_odbc.odbc)


@pytest.fixture
def coders(django_user_model) -> dict:
    """The runner (task rights, not the right to write code) and a coder (the same rights and that one)."""
    runner = make_user(django_user_model, "staff_runner")
    coder = make_user(django_user_model, "staff_coder")
    coder.user_permissions.add(Permission.objects.get(codename="write_code"))
    # Django's own rights on the admin's inline code rows: without them the admin does not show the rows at all.
    for user in (runner, coder):
        user.user_permissions.add(*Permission.objects.filter(codename__endswith="_codelocation"))
    return {"staff_runner": runner, "staff_coder": django_user_model.objects.get(pk=coder.pk)}


CODE_CHANGES = {
    # The task pages
    "page: edit an inline processing script": page_edit("script", **{"script-text": "print(open('/etc/passwd').read())"}),
    "page: edit script requirements": page_edit("script", processing_requirements="evil-package"),
    "page: edit a package's entry file": page_edit("package", processing_entry="tool/other.py"),
    "page: move a package": page_edit("package", **{"script-path": "pkg/other.zip"}),
    "page: switch the script off": page_edit("package", use_script=""),
    "page: open the script's network": page_edit("package", script_network="on"),
    "page: edit an SSH command": page_edit("ssh", **{"query-text": "cat /etc/shadow"}),
    "page: point remote SQL elsewhere": page_edit("remote_sql", **{"query-url": "https://code.example.test/elsewhere.sql"}),
    "page: bring remote SQL inline": page_edit("remote_sql", **{"query-location": "inline", "query-text": "select 9"}),
    "page: keep SQL on a web server": page_edit("sql", **{"query-location": "web", "query-connection": Conn("web"),
                                                          "query-url": "https://code.example.test/other.sql"}),
    "page: add a processing script": page_edit("sql", use_script="on", **{"script-location": "inline", "script-text": "print(1)"}),
    "page: switch SQL to an SSH command": page_edit("sql", source_kind="ssh", source_connection=Conn("ssh")),
    "page: switch SQL to a Python script": page_edit("sql", source_kind="python", **{"script-location": "inline", "script-text": "print(1)"}),
    "page: switch a script task to SQL": page_edit("script", source_kind="database", source_connection=Conn("database"),
                                                   **{"query-location": "inline", "query-text": "select 1"}),
    "page: new Python-script task": page_new(source_kind="python", source_connection="",
                                             **{"script-location": "inline", "script-text": "print(1)"}),
    "page: new task with remote SQL": page_new(**{"query-location": "web", "query-connection": Conn("web"),
                                                  "query-url": "https://code.example.test/q.sql"}),
    "page: new task with requirements": page_new(processing_requirements="evil-package"),
    # Copies
    "page: duplicate a script task": duplicate("script"),
    "page: duplicate an SSH task": duplicate("ssh"),
    "page: duplicate a project with code": project_duplicate,
}


def test_without_the_right_to_write_code_every_route_refuses_a_change_of_code(code_world, coders):
    """The runner gets 403 and nothing changes; the coder, sending the same request, changes the tables."""
    def check(client, user, who, case, before):
        response = case(client, code_world)
        changed = fingerprint() != before
        if who == "staff_coder":
            return None if response.status_code == 302 and changed else f"not done ({response.status_code}, changed: {changed})"
        return expect(response, 403) or ("a refused request changed something" if changed else None)

    check_matrix(coders, CODE_CHANGES, check)


def _to_the_admin(view: str, task: str, **changes):
    """The task page's form with a change of code, posted to one of the admin's task pages instead."""
    def case(client, w):
        page = reverse("courier:task_edit", args=[w.tasks[task].pk])
        data = {**form_on(client, page), **changes, "project": w.project.pk, "_save": "Save"}
        args = [w.tasks[task].pk] if view == "change" else []
        return client.post(reverse(f"admin:tasks_task_{view}", args=args), data)

    return case


ADMIN_CODE_ROUTES = {
    "admin: edit an inline script": _to_the_admin("change", "script", **{"script-text": "import os; os.system('id')"}),
    "admin: switch SQL to an SSH command": _to_the_admin("change", "sql", source_kind="ssh"),
    "admin: new task with a script": _to_the_admin("add", "script", name="copy"),
    "admin: duplicate a task with remote SQL": lambda client, w: client.post(
        reverse("admin:tasks_task_changelist"), {"action": "duplicate_selected", "_selected_action": [w.tasks["remote_sql"].pk]}),
}


def test_the_admin_is_no_route_to_code_for_anyone(code_world, coders):
    """Its task pages lead to Courier's: whatever is posted there, for the coder too, changes nothing."""
    def check(client, user, who, case, before):
        response = case(client, code_world)
        return expect(response, 302) or (None if fingerprint() == before else "the admin changed something")

    check_matrix(coders, ADMIN_CODE_ROUTES, check)


def _save_as_a_person(client, url: str, **changes) -> str:
    """GET the form, change some fields, POST it and follow the redirect: the page the person lands on."""
    response = client.post(url, {**form_on(client, url), **changes, "_save": "Save"}, follow=True)
    assert response.redirect_chain, f"not saved: {response.status_code}"
    return response.content.decode()


def test_without_the_right_to_write_code_the_other_settings_still_change_and_the_task_runs(code_world, coders, client):
    w, runner = code_world, coders["staff_runner"]
    client.force_login(runner)
    code_before = {name: codeguard.saved_code(task.pk) for name, task in w.tasks.items()}
    sql = w.tasks["sql"]
    page = _save_as_a_person(client, reverse("courier:task_edit", args=[sql.pk]), output_name="answer",
                             **{"query-text": "select 42 as answer"})
    assert "Saved the task" in page
    for name in ("script", "package", "ssh", "remote_sql"):
        _save_as_a_person(client, reverse("courier:task_edit", args=[w.tasks[name].pk]), output_name=f"{name}-out", retry_max="2")
    _save_as_a_person(client, reverse("courier:task_edit", args=[w.tasks["script"].pk]), timeout_minutes="7")
    _save_as_a_person(client, reverse("courier:task_new", args=[w.project.pk]), name="plain",
                      source_connection=w.conns["database"].pk, **{"query-text": "select 3 as three"})

    tasks = {t.name: t for t in Task.objects.filter(project=w.project)}
    assert {tasks[n].output_name for n in ("script", "package", "ssh", "remote_sql")} == {
        "script-out", "package-out", "ssh-out", "remote_sql-out"}
    assert tasks["script"].timeout_minutes == 7 and tasks["ssh"].retry_max == 2
    assert {name: codeguard.saved_code(w.tasks[name].pk) for name in code_before} == code_before
    assert tasks["plain"].code_locations.get().text == "select 3 as three"

    response = client.post(reverse("courier:task_action", args=[sql.pk, "run"]), follow=True)
    assert "Started run" in response.content.decode()
    run = sql.runs.get()
    assert run.started_by == runner
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert (w.outbox / "answer.csv").read_text().splitlines() == ["answer", "42"]


def _disabled_on_edit_page(client, task: Task) -> set[str]:
    html = client.get(reverse("courier:task_edit", args=[task.pk])).content.decode()
    return browser_form(html, "task_form")[1]


def test_the_edit_page_shows_the_code_fields_disabled_to_whom_may_not_write_code(code_world, coders, client):
    w = code_world
    client.force_login(coders["staff_runner"])
    script_fields = {"use_script", "processing_entry", "processing_requirements", "script_network", "script-location", "script-text",
                     "script-connection", "script-path", "script-url", "script-cache"}
    # Inline SQL stays open; where it is kept does not; code kinds cannot be chosen.
    assert _disabled_on_edit_page(client, w.tasks["sql"]) == script_fields | {
        "query-location", "query-connection", "query-path", "query-url", "query-cache"}
    html = client.get(reverse("courier:task_edit", args=[w.tasks["sql"].pk])).content.decode()
    assert '<option value="ssh" disabled>' in html and '<option value="python" disabled>' in html
    assert '<option value="sftp">' in html and "are read-only" in html
    # An SSH command and a script task: the source kind and the whole query or command are locked too.
    assert {"source_kind", "query-text", "query-location"} <= _disabled_on_edit_page(client, w.tasks["ssh"])
    assert {"source_kind", "script-text"} <= _disabled_on_edit_page(client, w.tasks["script"])
    assert "query-text" in _disabled_on_edit_page(client, w.tasks["remote_sql"])

    client.force_login(coders["staff_coder"])
    assert _disabled_on_edit_page(client, w.tasks["ssh"]) == set()
    assert "are read-only" not in client.get(reverse("courier:task_edit", args=[w.tasks["ssh"].pk])).content.decode()


def test_the_right_to_write_code_is_a_permission_a_superuser_grants_and_holds(coders, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    assert [codeguard.may_write_code(u) for u in (coders["staff_runner"], coders["staff_coder"], boss)] == [False, True, True]
    assert Permission.objects.get(codename="write_code").name == "Can write code that runs"
