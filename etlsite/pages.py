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
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from connections import audit
from runs.models import Run, RunStatus

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


class LeadsToCourierPages:
    """A model admin whose objects live on Courier's pages: its list, add, change and delete pages lead there.

    One UI per object: the admin's own form for a task or project was a second,
    poorer editor beside Courier's (no code editor, other checks). Each of these
    views first asks the admin's own permission question, so whoever the admin
    refuses is still refused (403), then answers with Courier's page, whatever
    the method: nothing is saved or deleted here. The history page stays, and
    the links on it lead to Courier's pages too. The model is left out of the
    admin's app list: Courier's menu (courier/nav_section.html) lists its pages.
    """

    actions = None  # Courier's pages act on one object, or on a project's tasks
    list_page = detail_page = delete_page = ""  # names of Courier's URLs

    def add_page_url(self, request: HttpRequest) -> str:
        raise NotImplementedError

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False

    def _refuse_unless(self, allowed: bool, doing: str) -> None:
        if not allowed:
            raise PermissionDenied(f"You do not have permission to {doing} {self.opts.verbose_name_plural}.")

    def _object(self, request: HttpRequest, object_id: str) -> models.Model:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"There is no {self.opts.verbose_name} with the id “{object_id}”.")
        return obj

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        self._refuse_unless(self.has_view_or_change_permission(request), "view")
        return redirect(self.list_page)

    def add_view(self, request: HttpRequest, form_url="", extra_context=None) -> HttpResponse:
        self._refuse_unless(self.has_add_permission(request), "add")
        return redirect(self.add_page_url(request))

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None) -> HttpResponse:
        obj = self._object(request, object_id)
        self._refuse_unless(self.has_view_or_change_permission(request, obj), "view")
        return redirect(self.detail_page, pk=obj.pk)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        obj = self._object(request, object_id)
        self._refuse_unless(self.has_delete_permission(request, obj), "delete")
        return redirect(self.delete_page, pk=obj.pk)

def skipped_note(runs: Sequence[Run]) -> str:
    """“ Skipped: orders, previous run still active (run 5 of Nightly/orders, running); recorded as skipped run 7.”

    For the starts among `runs` that found their task busy (the run engine records them skipped, with the
    reason), or “” when none did.
    """
    notes = [f"{run.task.name}, {run.error.rstrip('.')}; recorded as skipped run {run.pk}"
             for run in runs if run.status == RunStatus.SKIPPED]
    return f" Skipped: {'; '.join(notes)}." if notes else ""
