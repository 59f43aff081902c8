"""Reading a task's source, processing, output, destinations and email sections."""

from __future__ import annotations

from connections import kinds
from connections.kinds import Reads
from connections.models import Connection, GpgKey
from tasks.configuration import schema
from tasks.configuration.reader import Reader
from tasks.configuration.saving import assign, save_valid
from tasks.models import (
    CodeLocation,
    CodeLocationKind,
    CodeRole,
    Destination,
    DestinationKind,
    Encoding,
    GuardAction,
    IfExists,
    LineEnding,
    Notification,
    OutputType,
    Quoting,
    SourceKind,
    Task,
    guard_problems,
)

# The row guard's numbers: Task field → (JSON key, default), in guard_problems' order.
GUARD_KEYS = {"guard_min_rows": ("min_rows", None), "guard_max_rows": ("max_rows", None),
              "guard_median_runs": ("median_runs", 0), "guard_median_percent": ("median_percent", None)}


class TaskSections:
    def __init__(self, reader: Reader, connections: dict[str, Connection], gpg_keys: dict[str, GpgKey]) -> None:
        self.r = reader
        self.connections = connections
        self.gpg_keys = gpg_keys
        self.codes: dict[str, dict | None] = {}

    def connection(self, data: dict, path: str, *, kind: str | None = None, nullable: bool = False) -> Connection | None:
        ref = data.get("connection") if isinstance(data, dict) else None
        if ref is None and nullable:
            return None
        if not isinstance(ref, str) or "/" not in ref:
            self.r.error(f"{path}.connection", 'must be "Organization/name"')
            return None
        conn = self.connections.get(ref)
        if conn is None:
            self.r.error(f"{path}.connection", f'no connection "{ref}"')
        elif kind and conn.kind != kind:
            self.r.error(f"{path}.connection", f'"{ref}" is a {conn.kind} connection, not {kind}')
            return None
        return conn

    def code(self, data: dict, path: str) -> dict | None:
        code = self.r.obj(data.get("code") if isinstance(data, dict) else None, f"{path}.code")
        if code is None:
            return None
        path = f"{path}.code"
        location = self.r.choice(code, "location", path, CodeLocationKind.values, what="code location")
        values = {"location": location, "cache": self.r.flag(code, "cache", path), "text": "", "path": "", "url": "", "connection": None}
        if location == CodeLocationKind.INLINE:
            values["text"] = self.r.text(code, "text", path, required=True)
        elif location:
            use = kinds.KINDS[location].code
            values["connection"] = self.connection(code, path, kind=location, nullable=use.connection_optional)
            values[use.address] = self.r.text(code, use.address, path, required=True)
        return values

    def source(self, data: dict, path: str) -> dict:
        path = f"{path}.source"
        src = self.r.obj(data.get("source"), path) or {}
        kind = self.r.choice(src, "kind", path, SourceKind.values, what="source kind")
        reads = kinds.reads(kind)
        values = {"source_kind": kind, "source_connection": None, "source_path": "", "source_missing_ok": False,
                  "source_delimiter": "", "source_stdout_as_file": False, "source_headers": True, "source_fail_on_empty": False}
        if reads:
            # A source reads from a connection of its own kind.
            values["source_connection"] = self.connection(src, path, kind=kind)
        if reads in (Reads.QUERY, Reads.COMMAND):
            self.codes[CodeRole.SOURCE] = self.code(src, path)
        if reads == Reads.QUERY:
            values["source_headers"] = self.r.flag(src, "headers", path, default=True)
            values["source_fail_on_empty"] = self.r.flag(src, "fail_on_empty", path)
        elif reads == Reads.FILES:
            values["source_path"] = self.r.text(src, "path", path, required=True)
            values["source_missing_ok"] = self.r.flag(src, "missing_ok", path)
            values["source_delimiter"] = self.r.text(src, "delimiter", path, default=None) or ""
        elif reads == Reads.COMMAND:
            values["source_stdout_as_file"] = self.r.flag(src, "stdout_as_file", path)
        return values

    def processing_fields(self, data: dict, path: str) -> dict:
        processing = self.r.obj(data.get("processing"), f"{path}.processing", nullable=True)
        if processing is None:
            self.codes[CodeRole.PROCESSING] = None
            return {"processing_entry": "", "processing_requirements": "", "script_network": True}
        path = f"{path}.processing"
        self.codes[CodeRole.PROCESSING] = self.code(processing, path)
        return {"processing_entry": self.r.text(processing, "entry", path, default=None) or "",
                "processing_requirements": self.r.text(processing, "requirements", path),
                "script_network": self.r.flag(processing, "network", path, default=True)}

    def output(self, data: dict, path: str) -> dict:
        path = f"{path}.output"
        out = self.r.obj(data.get("output", {}), path) or {}
        zip_ = self.r.obj(out.get("zip"), f"{path}.zip", nullable=True)
        gpg = self.r.obj(out.get("gpg"), f"{path}.gpg", nullable=True)
        values = {
            "output_type": self.r.choice(out, "type", path, [*OutputType.values, None], default=None, what="type") or "",
            "output_name": self.r.text(out, "name", path),
            "output_delimiter": self.r.text(out, "delimiter", path, default=","),
            "output_headers": self.r.flag(out, "headers", path, default=True),
            "output_quoting": self.r.choice(out, "quoting", path, Quoting.values, default="minimal", what="quoting") or "minimal",
            "output_escape_char": self.r.text(out, "escape_char", path, default="\\"),
            "output_encoding": self.r.choice(out, "encoding", path, Encoding.values, default="utf-8", what="encoding") or "utf-8",
            "output_line_ending": self.r.choice(out, "line_ending", path, LineEnding.values, default="lf", what="line ending") or "lf",
            "output_line_suffix": self.r.text(out, "line_suffix", path),
            "zip_enabled": zip_ is not None,
            "zip_name": self.r.text(zip_, "name", f"{path}.zip", required=True) if zip_ is not None else "",
            "gpg_key": None,
            "gpg_armor": False,
        }
        if gpg is not None:
            key_name = self.r.text(gpg, "key", f"{path}.gpg", required=True)
            values["gpg_key"] = self.gpg_keys.get(key_name)
            if key_name and values["gpg_key"] is None:
                self.r.error(f"{path}.gpg.key", f'no GPG key "{key_name}"')
            values["gpg_armor"] = self.r.flag(gpg, "armor", f"{path}.gpg")
        return values

    def row_guard(self, data: dict, path: str) -> dict:
        path = f"{path}.row_guard"
        guard = self.r.obj(data.get("row_guard"), path, nullable=True) or {}
        values = {field: self.r.number(guard, key, path, default=default, nullable=default is None)
                  for field, (key, default) in GUARD_KEYS.items()}
        for field, problem in guard_problems(*values.values()).items():
            self.r.error(f"{path}.{GUARD_KEYS[field][0]}", problem)
        values["guard_action"] = self.r.choice(guard, "action", path, GuardAction.values, default="fail", what="action") or "fail"
        return values

    def save_children(self, task: Task, data: dict, path: str) -> None:
        for role, values in self.codes.items():
            existing = task.code_locations.filter(role=role).first()
            if values is None:
                if existing:
                    existing.delete()
                continue
            code = existing or CodeLocation(task=task, role=role)
            section = "source" if role == CodeRole.SOURCE else "processing"
            save_valid(self.r, code, f"{path}.{section}.code", changed=assign(code, values), exclude=["task"])
        self.destinations(task, data, path)
        self.emails(task, data, path)

    def destinations(self, task: Task, data: dict, path: str) -> None:
        existing = list(task.destinations.all())
        items = self.r.items(data, "destinations", path)
        for i, item in enumerate(items):
            item_path = f"{path}.destinations[{i}]"
            if self.r.obj(item, item_path) is None:
                continue
            kind = self.r.choice(item, "kind", item_path, DestinationKind.values, what="destination kind")
            conn = self.connection(item, item_path, kind=kind)
            done = self.r.obj(item.get("done_file"), f"{item_path}.done_file", nullable=True)
            values = {"kind": kind, "connection": conn, "folder": self.r.text(item, "folder", item_path),
                      "if_exists": self.r.choice(item, "if_exists", item_path, IfExists.values, default="fail", what="if_exists value"),
                      "skip_empty": self.r.flag(item, "skip_empty", item_path), "position": i,
                      "done_file": self.r.text(done, "name", f"{item_path}.done_file", required=True) if done is not None else "",
                      "done_manifest": self.r.flag(done, "manifest", f"{item_path}.done_file") if done is not None else False}
            if self.r.errors:
                continue
            dest = existing[i] if i < len(existing) else Destination(task=task)
            save_valid(self.r, dest, item_path, changed=assign(dest, values), exclude=["task"])
        for extra in existing[len(items):]:
            extra.delete()

    def emails(self, task: Task, data: dict, path: str) -> None:
        path = f"{path}.email"
        email = self.r.obj(data.get("email", {}), path) or {}
        for event in ("success", "failure"):
            item = self.r.obj(email.get(event), f"{path}.{event}", nullable=True)
            existing = task.notifications.filter(event=event).first()
            if item is None:
                if existing:
                    existing.delete()
                continue
            item_path = f"{path}.{event}"
            values = {"recipients": self.r.text(item, "to", item_path, required=True),
                      "subject": self.r.text(item, "subject", item_path), "message": self.r.text(item, "message", item_path)}
            if event == "success":
                values.update(attach=self.r.flag(item, "attach", item_path), embed=self.r.flag(item, "embed", item_path),
                              skip_empty=self.r.flag(item, "skip_empty", item_path))
            else:
                values.update(after_failures=self.r.number(item, "after_failures", item_path, default=1, minimum=1),
                              recovered=self.r.flag(item, "recovered", item_path))
            notification = existing or Notification(task=task, event=event)
            save_valid(self.r, notification, item_path, changed=assign(notification, values), exclude=["task"], keys=schema.NOTIFICATION_FIELD_KEYS)
