"""Error pages as a person meets them: refused, missing and broken pages in the admin's look, with the reason.

And with DEBUG off, as a fresh install runs: static files and the favicon are served.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from runs import views as run_views

pytestmark = pytest.mark.django_db

def assert_admin_look(html: str) -> None:
    """The admin's frame: its style sheet, the Courier header, the breadcrumbs."""
    assert "admin/css/base.css" in html
    assert '<div id="site-name"><a href="/admin/">Courier</a></div>' in html
    assert 'class="breadcrumbs"' in html


def refused(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 403
    html = response.content.decode()
    assert_admin_look(html)
    return html


def test_a_refused_courier_page_says_why_in_the_admin_look(client, staff_runner):
    client.force_login(staff_runner)
    html = refused(client, reverse("courier:scheduler"))
    assert '<p class="errornote">Only superusers may use the scheduler tools.</p>' in html
    assert "Log out" in html  # the user is still told who they are, with the sidebar of what they may see
    assert 'id="nav-sidebar"' in html and ">All tasks</a>" in html


def test_a_refused_admin_page_names_what_was_refused(client, staff_runner):
    """The admin raises PermissionDenied without a message; the page still names what the user may not do."""
    client.force_login(staff_runner)
    html = refused(client, reverse("admin:admin_logentry_changelist"))
    assert '<p class="errornote">You do not have permission to view log entries.</p>' in html
    html = refused(client, reverse("admin:connections_connection_add"))
    assert '<p class="errornote">You do not have permission to add connections.</p>' in html


def test_a_missing_page_is_in_the_admin_look(client, staff_runner):
    client.force_login(staff_runner)
    for url in (reverse("courier:task_detail", args=[987654]), "/admin/courier/no-such-page/", "/nowhere/"):
        response = client.get(url)
        assert response.status_code == 404, url
        html = response.content.decode()
        assert_admin_look(html)
        assert "Page not found" in html
    anonymous = Client().get("/nowhere/")
    assert anonymous.status_code == 404 and "Page not found" in anonymous.content.decode()
    assert 'id="nav-sidebar"' not in anonymous.content.decode()  # nothing of the site is shown to a stranger


def test_a_server_error_is_in_the_admin_look(client, staff_runner, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the dashboard broke")

    monkeypatch.setattr(run_views, "render_page", broken)
    client.force_login(staff_runner)
    client.raise_request_exception = False
    response = client.get(reverse("courier:dashboard"))
    assert response.status_code == 500
    html = response.content.decode()
    assert_admin_look(html)
    assert "Server error" in html and "the dashboard broke" not in html


def test_static_files_and_the_favicon_are_served_with_debug_off(staff_runner):
    assert settings.DEBUG is False
    call_command("collectstatic", interactive=False, verbosity=0)
    client = Client()  # a new client loads the middleware anew, after collectstatic
    client.force_login(staff_runner)
    css = client.get("/static/courier/courier.css")
    assert css.status_code == 200 and b".courier" in b"".join(css.streaming_content)
    page = client.get(reverse("courier:dashboard")).content.decode()
    assert '<link rel="icon" href="/static/courier/favicon.ico"' in page
    favicon = client.get("/favicon.ico", follow=True)
    assert favicon.status_code == 200
    assert b"".join(favicon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_a_form_refused_by_the_csrf_check_says_why_in_the_admin_look(staff_runner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_runner)
    response = client.post(reverse("courier:scheduler_action", args=["pause"]))
    assert response.status_code == 403
    html = response.content.decode()
    assert_admin_look(html)
    assert re.search(r'<p class="errornote">The form was refused: its security check failed \(CSRF cookie not set\.\)\. '
                     r"Reload the page and send it again\.</p>", html), html
