"""`import_config`: create or update everything by name, all or nothing (SPEC §12).

Objects are matched by name (connections by "Organization/name", tasks by
name within their project); a field is only written when its value differs,
so importing the same file twice changes nothing. Every problem is reported
with its JSON path and the transaction is rolled back.
"""

from __future__ import annotations

import zoneinfo

from django.contrib.auth import get_user_model
from django.db import models, transaction

from connections import kinds
from connections.clients.gpg import GpgError, inspect_key
from connections.models import Connection, GpgKey, Organization
from projects.models import IntervalUnit, Project, ProjectParameter
from tasks.configuration import integrity, schema, sections
from tasks.configuration.reader import ConfigError, Reader
from tasks.configuration.saving import assign, save_valid
from tasks.models import CodeRole, Task, TaskParameter
from tasks.validation import Draft, refusals

FORMAT_VERSION = 1


class Importer:
    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.connections: dict[str, Connection] = {}
        self.gpg_keys: dict[str, GpgKey] = {}
        self.dependencies = integrity.Dependencies(reader)

    def run(self, data: dict) -> None:
        if self.r.obj(data, "$") is None:
            return
        if data.get("version") != FORMAT_VERSION:
            self.r.error("version", f"must be {FORMAT_VERSION}")
            return
        for i, org in enumerate(self.r.items(data, "organizations", "$")):
            self.organization(org, f"organizations[{i}]")
        for i, key in enumerate(self.r.items(data, "gpg_keys", "$")):
            self.gpg_key(key, f"gpg_keys[{i}]")
        self.connections.update({str(c): c for c in Connection.objects.select_related("organization")})
        self.gpg_keys.update({k.name: k for k in GpgKey.objects.all()})
        for i, project in enumerate(self.r.items(data, "projects", "$")):
            self.project(project, f"projects[{i}]")
        if not self.r.errors:
            self.dependencies.resolve()  # a task may run after one further down the file

    def organization(self, data: dict, path: str) -> None:
        if self.r.obj(data, path) is None:
            return
        name = self.r.text(data, "name", path, required=True)
        contact = self.r.obj(data.get("contact", {}), f"{path}.contact") or {}
        org = Organization.objects.filter(name=name).first() or Organization(name=name)
        changed = assign(org, {
            "description": self.r.text(data, "description", path),
            "address": self.r.text(data, "address", path),
            "contact_name": self.r.text(contact, "name", f"{path}.contact"),
            "contact_email": self.r.text(contact, "email", f"{path}.contact"),
            "contact_phone": self.r.text(contact, "phone", f"{path}.contact"),
        })
        save_valid(self.r, org, path, changed=changed, keys=schema.ORGANIZATION_FIELD_KEYS)
        if org.pk:
            for i, conn in enumerate(self.r.items(data, "connections", path)):
                self.connection(org, conn, f"{path}.connections[{i}]")

    def connection(self, org: Organization, data: dict, path: str) -> None:
        if self.r.obj(data, path) is None:
            return
        key = self.r.choice(data, "kind", path, list(kinds.KINDS), what="connection kind")
        name = self.r.text(data, "name", path, required=True)
        if key is None:
            return
        kind = kinds.KINDS[key]
        conn = Connection.objects.filter(organization=org, name=name).first() or Connection(organization=org, name=name)
        conn.kind = key
        values = {}
        for field in kind.fields:
            value = self._connection_value(data, kind.config_key(field), field, path)
            if field in kind.secrets and not value:
                continue  # an export without secrets keeps the stored ones
            values[field] = value
        changed = assign(conn, values) or conn.pk is None
        save_valid(self.r, conn, path, changed=changed, exclude=["organization"])

    def _connection_value(self, data: dict, key: str, field: str, path: str):
        # Read as the model field's type, with its default when the key is left out.
        model_field = Connection._meta.get_field(field)
        default = model_field.get_default()
        if isinstance(model_field, models.BooleanField):
            return self.r.flag(data, key, path, default=default)
        if isinstance(model_field, models.IntegerField):
            return self.r.number(data, key, path, default=default, nullable=model_field.null)
        if model_field.choices:
            return self.r.choice(data, key, path, [value for value, _ in model_field.choices], default=default, what=field)
        return self.r.text(data, key, path)

    def gpg_key(self, data: dict, path: str) -> None:
        if self.r.obj(data, path) is None:
            return
        name = self.r.text(data, "name", path, required=True)
        text = self.r.text(data, "public_key", path, required=True)
        key = GpgKey.objects.filter(name=name).first() or GpgKey(name=name)
        if key.public_key.strip() == text.strip() and key.pk:
            return
        try:
            info = inspect_key(text)
        except GpgError as exc:
            self.r.error(f"{path}.public_key", str(exc))
            return
        assign(key, {"public_key": text.strip() + "\n", "fingerprint": info.fingerprint,
                     "user_ids": "\n".join(info.user_ids), "expires_at": info.expires_at})
        key.save()

    def project(self, data: dict, path: str) -> None:
        if self.r.obj(data, path) is None:
            return
        name = self.r.text(data, "name", path, required=True)
        owner_name = self.r.text(data, "owner", path, required=True)
        owner = get_user_model().objects.filter(username=owner_name).first()
        if owner is None and owner_name:
            self.r.error(f"{path}.owner", f'no user "{owner_name}"')
        zone = self.r.text(data, "timezone", path, default="UTC")
        if zone not in zoneinfo.available_timezones():
            self.r.error(f"{path}.timezone", f'unknown time zone "{zone}"')
            zone = "UTC"
        project = Project.objects.filter(name=name).first() or Project(name=name)
        values = {"description": self.r.text(data, "description", path), "sequence": self.r.flag(data, "sequence", path),
                  "timezone": zone, "owner_digest": self.r.flag(data, "digest", path), **self.triggers(data, path, zone),
                  **integrity.project_values(self.r, data, path)}
        if owner is not None:
            values["owner"] = owner
        changed = assign(project, values)
        if owner is None:
            return
        save_valid(self.r, project, path, changed=changed, keys=schema.PROJECT_FIELD_KEYS)
        if project.pk is None:
            return
        self.parameters(project.parameters, ProjectParameter, {"project": project}, data, path)
        for i, task in enumerate(self.r.items(data, "tasks", path)):
            self.task(project, task, f"{path}.tasks[{i}]")

    def triggers(self, data: dict, path: str, zone: str) -> dict:
        path = f"{path}.triggers"
        triggers = self.r.obj(data.get("triggers", {}), path) or {}
        interval = self.r.obj(triggers.get("interval"), f"{path}.interval", nullable=True)
        every, unit = None, ""
        if interval is not None:
            every = self.r.number(interval, "every", f"{path}.interval", default=None, minimum=1)
            unit = self.r.choice(interval, "unit", f"{path}.interval", IntervalUnit.values, what="unit") or ""
        cron = triggers.get("cron") or ""
        if not isinstance(cron, str):
            self.r.error(f"{path}.cron", "must be a string or null")
            cron = ""
        return {"cron": cron, "interval_every": every, "interval_unit": unit,
                "once_at": self.r.moment(triggers, "once", path, zone),
                "start_at": self.r.moment(triggers, "start", path, zone),
                "end_at": self.r.moment(triggers, "end", path, zone)}

    def parameters(self, manager, model, owner: dict, data: dict, path: str) -> None:
        existing = {p.key: p for p in manager.all()}
        seen = set()
        for i, item in enumerate(self.r.items(data, "parameters", path)):
            item_path = f"{path}.parameters[{i}]"
            if self.r.obj(item, item_path) is None:
                continue
            key = self.r.text(item, "key", item_path, required=True)
            value = self.r.text(item, "value", item_path)
            sensitive = self.r.flag(item, "sensitive", item_path)
            seen.add(key)
            param = existing.get(key) or model(key=key, **owner)
            keep_secret = sensitive and param.pk and param.sensitive and not value
            if keep_secret or (param.pk and param.sensitive == sensitive and param.clear_value == value and param.position == i):
                continue
            param.set_value(value, sensitive)
            param.position = i
            save_valid(self.r, param, item_path, exclude=list(owner))
        for key, param in existing.items():
            if key not in seen:
                param.delete()

    def task(self, project: Project, data: dict, path: str) -> None:
        if self.r.obj(data, path) is None:
            return
        name = self.r.text(data, "name", path, required=True)
        task = Task.objects.filter(project=project, name=name).first() or Task(project=project, name=name)
        retries = self.r.obj(data.get("retries", {}), f"{path}.retries") or {}
        values = {
            "enabled": self.r.flag(data, "enabled", path, default=True),
            "rank": self.r.number(data, "rank", path, default=None, nullable=True, minimum=-(2**31)),
            "timeout_minutes": self.r.number(data, "timeout_minutes", path, default=60, minimum=1),
            "retry_max": self.r.number(retries, "max", f"{path}.retries", default=0),
            "retry_delay_minutes": self.r.number(retries, "delay_minutes", f"{path}.retries", default=5),
            "retry_backoff": self.r.number(retries, "backoff", f"{path}.retries", default=1.0, minimum=1, real=True),
            "retry_on_every_failure": self.r.flag(retries, "on_every_failure", f"{path}.retries"),
            **integrity.task_values(self.r, data, path),
        }
        section = sections.TaskSections(self.r, self.connections, self.gpg_keys)
        values.update(section.source(data, path))
        values.update(section.processing_fields(data, path))
        values.update(section.output(data, path))
        values.update(section.row_guard(data, path))
        changed = assign(task, values)
        if self.r.errors:
            return
        save_valid(self.r, task, path, changed=changed, exclude=["project"], keys=schema.TASK_FIELD_KEYS)
        if task.pk is None:
            return
        self.parameters(task.parameters, TaskParameter, {"task": task}, data, path)
        section.save_children(task, data, path)
        self.dependencies.read(task, data, path)
        self.refuse_doomed(task, path)

    def refuse_doomed(self, task: Task, path: str) -> None:
        """What could only fail when the task runs (tasks/validation.py), at its JSON path: the import then rolls back.

        Judged on the task as saved inside the import's transaction, with its code, destinations and parameters.
        """
        codes = list(task.code_locations.select_related("connection"))
        draft = Draft(
            task, path, script=any(code.role == CodeRole.PROCESSING for code in codes),
            codes=[(f"{path}.{'source' if code.role == CodeRole.SOURCE else 'processing'}.code", code) for code in codes],
            destinations=[(f"{path}.destinations[{d.position}]", d) for d in task.destinations.select_related("connection")],
            parameter_keys={*task.project.parameters.values_list("key", flat=True), *task.parameters.values_list("key", flat=True)},
        )
        for refusal in refusals(draft):
            key = schema.TASK_FIELD_KEYS.get(refusal.field, refusal.field) if refusal.where == path else refusal.field
            self.r.error(f"{refusal.where}.{key}", refusal.message)


def import_config(data: dict) -> None:
    """Apply the whole file or nothing; raises ConfigError listing every problem."""
    if found := schema.problems(data):
        # Unknown keys and control characters first: nothing odd reaches the database.
        raise ConfigError(found)
    reader = Reader()
    with transaction.atomic():
        Importer(reader).run(data)
        if reader.errors:
            transaction.set_rollback(True)
    if reader.errors:
        raise ConfigError(reader.errors)
