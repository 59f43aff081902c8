"""Logging in: repeated failures lock the username from that address for a while, and weak passwords are refused."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def log_in(client, username: str, password: str):
    client.get(LOGIN)
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})


def logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_admin_login_locks_a_username_after_repeated_failures(client, superuser):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        wrong = log_in(client, "root", "not-the-password")
        assert not logged_in(client)
    assert wrong.status_code == 429 and "too many failed logins" in wrong.content.decode()

    refused = log_in(client, "root", "rootpass")

    assert refused.status_code == 429
    assert "too many failed logins" in refused.content.decode()
    assert f"{settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in refused.content.decode()
    assert not logged_in(client)


def test_a_failure_below_the_limit_does_not_lock(client, superuser):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "root", "not-the-password").status_code == 200
    assert log_in(client, "root", "rootpass").status_code == 302
    assert logged_in(client)


def test_another_user_from_the_same_address_is_not_locked(client, superuser, staff_runner):
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        log_in(client, "root", "not-the-password")

    response = log_in(client, "runner", "runnerpass")

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert logged_in(client)


def test_the_courier_pages_send_a_visitor_to_the_same_throttled_login(client, superuser):
    response = client.get("/admin/courier/tasks/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "root", "wrong")
    assert log_in(client, "root", "rootpass").status_code == 429


def add_user(client, password: str):
    page = client.get("/admin/auth/user/add/")
    assert page.status_code == 200 and 'name="password1"' in page.content.decode()
    return client.post("/admin/auth/user/add/", {
        "username": "newbie", "usable_password": "true", "password1": password, "password2": password,
    }, follow=True)


@pytest.mark.parametrize(("password", "complaint"), [
    ("password123", "This password is too common."),
    ("80417263559", "This password is entirely numeric."),
    ("short1", "This password is too short."),
    ("newbie12", "The password is too similar to the username."),
])
def test_the_admin_refuses_a_weak_password_for_a_new_user(client, superuser, password, complaint):
    client.force_login(superuser)

    response = add_user(client, password)

    assert complaint in response.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_the_admin_accepts_a_strong_password(client, superuser):
    client.force_login(superuser)

    response = add_user(client, "Tulip-Harbour-Quartz-71")

    assert response.redirect_chain and response.status_code == 200
    assert get_user_model().objects.get(username="newbie").check_password("Tulip-Harbour-Quartz-71")


def test_an_operator_lifts_a_lockout_with_a_command(client, superuser):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "root", "wrong")
    assert log_in(client, "root", "rootpass").status_code == 429

    call_command("axes_reset_username", "root", stdout=StringIO())

    assert log_in(client, "root", "rootpass").status_code == 302
    assert logged_in(client)


def test_the_generated_admin_password_passes_every_validator_and_logs_in(client):
    call_command("ensure_admin", stdout=StringIO())
    password = (settings.VAR_DIR / "admin-password").read_text().strip()
    admin = get_user_model().objects.get(username="admin")

    validate_password(password, admin)  # raises ValidationError naming the rule it breaks

    assert log_in(client, "admin", password).status_code == 302
    assert logged_in(client)
