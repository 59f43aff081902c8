"""Shared fixtures: the real servers (tests/servers.py), named users, and a few model builders."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

pytest_plugins = ["tests.servers", "tests.processing_support"]


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.test", "rootpass")


@pytest.fixture
def staff_runner(django_user_model):
    """A staff user who may view, change and run tasks and projects."""
    user = django_user_model.objects.create_user("runner", "runner@example.test", "runnerpass", is_staff=True)
    codenames = ["view_task", "change_task", "add_task", "run_task", "view_project", "change_project", "add_project", "view_run"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def staff_coder(staff_runner):
    """The same staff user, who may also write code that runs (scripts, SSH commands, remote code)."""
    staff_runner.user_permissions.add(Permission.objects.get(codename="write_code"))
    return type(staff_runner).objects.get(pk=staff_runner.pk)  # fresh: no cached permissions


@pytest.fixture
def staff_viewer(django_user_model):
    """A staff user with view rights only."""
    user = django_user_model.objects.create_user("viewer", "viewer@example.test", "viewerpass", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_task", "view_project", "view_run"]))
    return user
