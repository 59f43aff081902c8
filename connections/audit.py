"""The audit trail: every manual action and change, with who and when (SPEC §8).

Entries go to Django's admin log (`LogEntry`), so they appear in each
object's admin history, on the object's Courier page (`etlsite.pages.action_history`)
and in the admin's read-only “Audit trail” list.

This is the one writer of that log. It lives in the lowest app and imports
none, so the commands, pages and services of every app may write it.

A LogEntry must name a Django user. Commands have none, so they are written
as the inactive user `courier-system` (it cannot log in) and the message says
which operating-system account on which machine ran which command.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.db import models

SYSTEM_USERNAME = "courier-system"

__all__ = ["ADDITION", "CHANGE", "DELETION", "SYSTEM_USERNAME", "operator", "record", "record_command", "system_user"]


def system_user():
    """The inactive account that command-line actions are logged under."""
    users = get_user_model()
    user, created = users.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "is_staff": False, "first_name": "Command line"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def operator() -> str:
    """“OS user alice on worker-1 (manage.py run_task)”: who ran the command, as the machine knows it."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container user)
        account = f"uid {os.getuid()}"
    command = " ".join(os.path.basename(arg) if i == 0 else arg for i, arg in enumerate(sys.argv[:2]))
    return f"OS user {account} on {socket.gethostname()} ({command or 'a script'})"


def record(user, obj: models.Model, message: str, flag: int = CHANGE) -> None:
    """One admin-log entry for `obj`."""
    LogEntry.objects.log_actions(user.pk, [obj], flag, change_message=message, single_object=True)


def record_command(objects: models.Model | Iterable[models.Model], message: str, flag: int = CHANGE) -> None:
    """Log a command-line action on one or more objects, naming the operator."""
    items = [objects] if isinstance(objects, models.Model) else list(objects)
    if not items:
        return
    user = system_user()
    text = f"{message.rstrip('.')} — from the command line by {operator()}."
    for obj in items:
        record(user, obj, text, flag)
