"""The site's error pages (handler403/handler404 in etlsite/urls.py, CSRF_FAILURE_VIEW), in the admin's frame.

Django's own handlers render without the admin's context, so a refused page
was a bare "403 Forbidden" without its reason. These add the admin's context
(header, user tools, the sidebar of what the user may see) and, when the
refusal came without a message — the admin's own PermissionDenied has none —
name what was refused from the URL. The 500 page stays Django's handler:
it must not depend on anything that may be what broke (templates/500.html).
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.template import loader
from django.urls import Resolver404, resolve

# The admin's URL names end in the view; what a user may not do there.
ADMIN_VIEWS = {"changelist": "view", "add": "add", "change": "view", "delete": "delete", "history": "view the history of"}


def _admin_context(request: HttpRequest) -> dict:
    if not hasattr(request, "user"):
        return {}
    context = admin.site.each_context(request)
    # Someone not logged in to the admin sees its frame, not its (empty) menu.
    context["is_nav_sidebar_enabled"] = context["is_nav_sidebar_enabled"] and context["has_permission"]
    return context


def refused_what(request: HttpRequest) -> str:
    """“You do not have permission to view log entries.” for an admin URL; a general sentence otherwise."""
    try:
        name = resolve(request.path_info).url_name or ""
    except Resolver404:
        name = ""
    app_label, _, rest = name.partition("_")
    model_name, _, view = rest.rpartition("_")
    try:
        model = apps.get_model(app_label, model_name) if view in ADMIN_VIEWS else None
    except (LookupError, ValueError):
        model = None
    if model is None:
        return "You do not have permission to see this page."
    return f"You do not have permission to {ADMIN_VIEWS[view]} {model._meta.verbose_name_plural}."


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    context = {**_admin_context(request), "title": "Not allowed", "reason": reason}
    return HttpResponseForbidden(loader.render_to_string("403.html", context, request))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _refused(request, str(exception) or refused_what(request))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent without a valid security token (a stale page, cookies off)."""
    return _refused(request, f"The form was refused: its security check failed ({reason}). Reload the page and send it again.")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # The exception's text is not shown: it may name a stored file, and "not found" is all a person needs.
    context = {**_admin_context(request), "title": "Page not found", "request_path": request.path}
    return HttpResponseNotFound(loader.render_to_string("404.html", context, request))
