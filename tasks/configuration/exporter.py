"""`export_config`: every organization, connection, GPG key, project and task as JSON (SPEC §12)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch

from connections import kinds
from connections.kinds import Reads
from connections.models import Connection, GpgKey, Organization
from projects.models import Project
from tasks.configuration import integrity
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Destination, GuardAction, Task

FORMAT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=None).isoformat() if value else None


def connection_data(conn: Connection, include_secrets: bool) -> dict:
    data = {"kind": conn.kind, "name": conn.name}
    kind = kinds.KINDS[conn.kind]
    for field in kind.fields:
        if field == "port":
            value = conn.effective_port
        elif field in kind.secrets:
            value = getattr(conn, field) if include_secrets else ""
        else:
            value = getattr(conn, field)
        data[kind.config_key(field)] = value
    return data


def organization_data(org: Organization, include_secrets: bool) -> dict:
    return {
        "name": org.name,
        "description": org.description,
        "address": org.address,
        "contact": {"name": org.contact_name, "email": org.contact_email, "phone": org.contact_phone},
        "connections": [connection_data(c, include_secrets) for c in org.connections.all()],
    }


def parameter_data(params, include_secrets: bool) -> list[dict]:
    return [
        {"key": p.key, "value": p.clear_value if (include_secrets or not p.sensitive) else "", "sensitive": p.sensitive}
        for p in params
    ]


def code_data(code: CodeLocation | None) -> dict | None:
    if code is None:
        return None
    data: dict = {"location": code.location}
    if code.location == CodeLocationKind.INLINE:
        data["text"] = code.text
    else:
        address = kinds.KINDS[code.location].code.address  # a path or a URL
        data.update({"connection": str(code.connection) if code.connection else None, address: getattr(code, address)})
    if code.cache:
        data["cache"] = True
    return data


def source_data(task: Task, codes: dict) -> dict:
    kind, reads = task.source_kind, task.source_reads
    conn = str(task.source_connection) if task.source_connection else None
    if reads == Reads.QUERY:
        return {"kind": kind, "connection": conn, "code": code_data(codes.get(CodeRole.SOURCE)),
                "headers": task.source_headers, "fail_on_empty": task.source_fail_on_empty}
    if reads == Reads.FILES:
        return {"kind": kind, "connection": conn, "path": task.source_path,
                "missing_ok": task.source_missing_ok, "delimiter": task.source_delimiter or None}
    if reads == Reads.COMMAND:
        return {"kind": kind, "connection": conn, "code": code_data(codes.get(CodeRole.SOURCE)),
                "stdout_as_file": task.source_stdout_as_file}
    return {"kind": kind}


def output_data(task: Task) -> dict:
    return {
        "type": task.output_type or None, "name": task.output_name, "delimiter": task.output_delimiter,
        "headers": task.output_headers, "quoting": task.output_quoting, "escape_char": task.output_escape_char,
        "encoding": task.output_encoding, "line_ending": task.output_line_ending, "line_suffix": task.output_line_suffix,
        "zip": {"name": task.zip_name} if task.zip_enabled else None,
        "gpg": {"key": task.gpg_key.name, "armor": task.gpg_armor} if task.gpg_key else None,
    }


def email_data(task: Task) -> dict:
    mails = {n.event: n for n in task.notifications.all()}
    success, failure = mails.get("success"), mails.get("failure")
    return {
        "success": None if success is None else {
            "to": success.recipients, "subject": success.subject, "message": success.message,
            "attach": success.attach, "embed": success.embed, "skip_empty": success.skip_empty,
        },
        "failure": None if failure is None else {
            "to": failure.recipients, "subject": failure.subject, "message": failure.message,
            "after_failures": failure.after_failures, "recovered": failure.recovered,
        },
    }


def row_guard_data(task: Task) -> dict | None:
    """The row guard's limits and action; null when it has none and the action is the default (fail)."""
    data = {"min_rows": task.guard_min_rows, "max_rows": task.guard_max_rows, "median_runs": task.guard_median_runs,
            "median_percent": task.guard_median_percent, "action": task.guard_action}
    if data == {"min_rows": None, "max_rows": None, "median_runs": 0, "median_percent": None, "action": GuardAction.FAIL}:
        return None
    return data


def destination_data(d: Destination) -> dict:
    return {"kind": d.kind, "connection": str(d.connection), "folder": d.folder, "if_exists": d.if_exists,
            "skip_empty": d.skip_empty, "done_file": {"name": d.done_file, "manifest": d.done_manifest} if d.done_file else None}


def task_data(task: Task, include_secrets: bool) -> dict:
    codes = {c.role: c for c in task.code_locations.all()}
    processing = codes.get(CodeRole.PROCESSING)
    return {
        "name": task.name, "enabled": task.enabled, "rank": task.rank, "timeout_minutes": task.timeout_minutes,
        "retries": {"max": task.retry_max, "delay_minutes": task.retry_delay_minutes,
                    "backoff": task.retry_backoff, "on_every_failure": task.retry_on_every_failure},
        "parameters": parameter_data(task.parameters.all(), include_secrets),
        "source": source_data(task, codes),
        "processing": None if processing is None else {
            "code": code_data(processing), "entry": task.processing_entry or None,
            "requirements": task.processing_requirements, "network": task.script_network,
        },
        "output": output_data(task),
        "row_guard": row_guard_data(task),
        "destinations": [destination_data(d) for d in task.destinations.all()],
        "email": email_data(task),
        **integrity.task_data(task),
    }


def project_data(project: Project, include_secrets: bool) -> dict:
    interval = {"every": project.interval_every, "unit": project.interval_unit} if project.interval_every else None
    return {
        "name": project.name, "description": project.description, "owner": project.owner.get_username(),
        "sequence": project.sequence, "timezone": project.timezone, "digest": project.owner_digest,
        "triggers": {"cron": project.cron or None, "interval": interval, "once": _iso(project.once_at),
                     "start": _iso(project.start_at), "end": _iso(project.end_at)},
        **integrity.project_data(project),
        "parameters": parameter_data(project.parameters.all(), include_secrets),
        "tasks": [task_data(t, include_secrets) for t in project.tasks.all()],
    }


def export_config(include_secrets: bool = False) -> dict:
    """Times are written in the project's zone, without an offset, as a person would type them."""
    organizations = Organization.objects.prefetch_related(
        Prefetch("connections", queryset=Connection.objects.select_related("organization").order_by("name"))
    )
    tasks = Task.objects.select_related("source_connection__organization", "gpg_key").prefetch_related(
        "parameters", "notifications", "destinations__connection__organization", "code_locations__connection__organization",
        "wait_for__project",
    ).order_by("name")
    projects = Project.objects.select_related("owner").prefetch_related("parameters", Prefetch("tasks", queryset=tasks))
    return {
        "version": FORMAT_VERSION,
        "organizations": [organization_data(o, include_secrets) for o in organizations],
        "gpg_keys": [{"name": k.name, "public_key": k.public_key} for k in GpgKey.objects.all()],
        "projects": [project_data(_localised(p), include_secrets) for p in projects],
    }


def _localised(project: Project) -> Project:
    import zoneinfo

    zone = zoneinfo.ZoneInfo(project.timezone)
    for name in ("once_at", "start_at", "end_at"):
        value = getattr(project, name)
        if value:
            setattr(project, name, value.astimezone(zone))
    return project
