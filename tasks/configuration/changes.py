"""What an import changed, object by object, for the audit trail.

The configuration is exported (with secrets) before and after the import and
each organization, connection, GPG key, project and task is compared by a
digest of its exported form; only digests are kept, never the clear text.
A change to a child (a parameter, destination or email) counts as a change
of its task or project.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import models

from connections.models import Connection, GpgKey, Organization
from projects.models import Project
from tasks.configuration.exporter import export_config
from tasks.models import Task

Key = tuple[str, ...]


@dataclass(frozen=True)
class Change:
    obj: models.Model
    added: bool


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def snapshot() -> dict[Key, str]:
    """A digest of every object's exported form, keyed by (kind, name…)."""
    data = export_config(include_secrets=True)
    found: dict[Key, str] = {}
    for org in data["organizations"]:
        connections = org.pop("connections")
        found[("organization", org["name"])] = _digest(org)
        for conn in connections:
            found[("connection", org["name"], conn["name"])] = _digest(conn)
    for key in data["gpg_keys"]:
        found[("gpg_key", key["name"])] = _digest(key)
    for project in data["projects"]:
        tasks = project.pop("tasks")
        found[("project", project["name"])] = _digest(project)
        for task in tasks:
            found[("task", project["name"], task["name"])] = _digest(task)
    return found


def _lookup(key: Key) -> models.Model | None:
    kind, *names = key
    queries = {
        "organization": lambda: Organization.objects.filter(name=names[0]),
        "connection": lambda: Connection.objects.filter(organization__name=names[0], name=names[1]),
        "gpg_key": lambda: GpgKey.objects.filter(name=names[0]),
        "project": lambda: Project.objects.filter(name=names[0]),
        "task": lambda: Task.objects.filter(project__name=names[0], name=names[1]),
    }
    return queries[kind]().first()


def changes(before: dict[Key, str], after: dict[Key, str]) -> list[Change]:
    """Objects added or changed between two snapshots (an import never deletes)."""
    found = []
    for key, digest in after.items():
        if before.get(key) != digest and (obj := _lookup(key)) is not None:
            found.append(Change(obj, added=key not in before))
    return found
