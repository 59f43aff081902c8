"""What every Courier page shares: the admin's frame, permission checks and the action history.

The pages are plain function views wrapped by `admin.site.admin_view` in
etlsite/urls.py, so they get the admin's login, staff check and CSRF handling;
here they get the admin's context (header, sidebar, theme) and breadcrumbs.

The page layer (this module, tables.py, filters.py) lives in the site, not in
an app: the pages of projects/, tasks/ and runs/ all use it, and an app's
pages may not borrow another app's page helpers. It sits above every app's
models and logic and below every app's pages (tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from connections import audit

Crumbs = Sequence[tuple[str, str | None]]

PERMISSION_NAMES = {
    "tasks.view_task": "view tasks",
    "tasks.add_task": "add tasks",
    "tasks.change_task": "change tasks",
    "tasks.delete_task": "delete tasks",
    "tasks.run_task": "run tasks",
    "projects.view_project": "view projects",
    "projects.add_project": "add projects",
    "projects.change_project": "change projects",
    "projects.delete_project": "delete projects",
    "runs.view_run": "view runs",
}


def render_page(request: HttpRequest, template: str, *, title: str, crumbs: Crumbs = (), **context) -> HttpResponse:
    """Render inside the admin's frame; `crumbs` are (label, url) pairs after Home › Courier."""
    page = {**admin.site.each_context(request), "title": title, "crumbs": crumbs, **context}
    return render(request, template, page)


def require(request: HttpRequest, *perms: str) -> None:
    """Refuse the request unless the user holds every one of `perms`."""
    missing = [p for p in perms if not request.user.has_perm(p)]
    if missing:
        names = ", ".join(PERMISSION_NAMES.get(p, p) for p in missing)
        raise PermissionDenied(f"You do not have permission to {names}.")


def require_superuser(request: HttpRequest) -> None:
    if not request.user.is_superuser:
        raise PermissionDenied("Only superusers may use the scheduler tools.")


def record(request: HttpRequest, obj: models.Model, message: str, flag: int = CHANGE) -> None:
    """Write a manual action to the admin log (who, when, what); shown in each page's history."""
    audit.record(request.user, obj, message, flag)


def record_addition(request: HttpRequest, obj: models.Model, message: str = "Added.") -> None:
    record(request, obj, message, ADDITION)


def record_deletion(request: HttpRequest, obj: models.Model) -> None:
    record(request, obj, "Deleted.", DELETION)


def action_history(obj: models.Model, limit: int = 15) -> list[LogEntry]:
    """The latest admin-log entries of one object, newest first (one query)."""
    content_type = ContentType.objects.get_for_model(obj)  # cached after the first call
    entries = LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk)).select_related("user")
    return list(entries.order_by("-action_time", "-id")[:limit])
