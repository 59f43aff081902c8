"""The keys of the export/import format (SPEC §12), and the check that refuses any other.

`problems(document)` walks the document along this schema before anything is
imported: an unknown key anywhere (a typo must never be silently ignored) and
a control character in any string are reported with their JSON path. Wrong
types and values are left to the importer, which reports them on the same
paths. The walk follows the schema only, so its depth is the schema's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connections import kinds
from connections.kinds import KINDS, Reads
from connections.validators import LINE_BREAKS, TAB, control_character_problem
from tasks.models import CodeLocationKind, SourceKind


@dataclass(frozen=True)
class Obj:
    keys: Mapping[str, Node]


@dataclass(frozen=True)
class Items:
    item: Node


@dataclass(frozen=True)
class ByKind:
    """An object whose keys depend on one of its values (a connection's kind, a code's location)."""

    field: str
    what: str
    shapes: Mapping[str, Obj]


Node = Obj | Items | ByKind | None  # None: a plain value (string, number, true/false or null)

# Names and references: no control character at all. Text that may run over
# several lines keeps tab and line breaks; any other string may hold a tab (a delimiter).
NAME_KEYS = frozenset({"name", "key", "owner", "connection"})
MULTILINE_KEYS = frozenset({"text", "requirements", "public_key", "private_key", "message", "description", "address", "to", "value"})
PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def obj(*plain: str, **children: Node) -> Obj:
    return Obj({**dict.fromkeys(plain), **children})


PARAMETERS = Items(obj("key", "value", "sensitive"))
# Code kept elsewhere is named by its kind's address: a path or a URL (connections/kinds.py).
CODE = ByKind("location", "code location", {
    CodeLocationKind.INLINE: obj("location", "text", "cache"),
    **{key: obj("location", "connection", KINDS[key].code.address, "cache") for key in kinds.code_kinds()},
})
# A source's keys follow what it reads.
SOURCE_KEYS = {
    Reads.QUERY: obj("kind", "connection", "headers", "fail_on_empty", code=CODE),
    Reads.FILES: obj("kind", "connection", "path", "missing_ok", "delimiter"),
    Reads.COMMAND: obj("kind", "connection", "stdout_as_file", code=CODE),
}
SOURCE = ByKind("kind", "source", {
    **{key: SOURCE_KEYS[kind.source.reads] for key, kind in KINDS.items() if kind.source},
    SourceKind.PYTHON: obj("kind"),
})
OUTPUT = obj("type", "name", "delimiter", "headers", "quoting", "escape_char", "encoding", "line_ending", "line_suffix",
             zip=obj("name"), gpg=obj("key", "armor"))
TASK = obj(
    "name", "enabled", "rank", "timeout_minutes", "expected_by",
    retries=obj("max", "delay_minutes", "backoff", "on_every_failure"),
    dependencies=obj("window_minutes", "give_up_after_minutes", after=Items(None)),
    parameters=PARAMETERS, source=SOURCE, processing=obj("entry", "requirements", "network", code=CODE), output=OUTPUT,
    row_guard=obj("min_rows", "max_rows", "median_runs", "median_percent", "action"),
    destinations=Items(obj("kind", "connection", "folder", "if_exists", "skip_empty", done_file=obj("name", "manifest"))),
    email=obj(success=obj("to", "subject", "message", "attach", "embed", "skip_empty"),
              failure=obj("to", "subject", "message", "after_failures", "recovered")),
)
PROJECT = obj(
    "name", "description", "owner", "sequence", "timezone", "digest",
    triggers=obj("cron", "once", "start", "end", interval=obj("every", "unit")),
    missed_runs=obj("policy", "catch_up_minutes"),
    parameters=PARAMETERS, tasks=Items(TASK),
)
CONNECTION = ByKind("kind", "connection", {
    key: obj("kind", "name", *(kind.config_key(field) for field in kind.fields)) for key, kind in KINDS.items()
})
ORGANIZATION = obj("name", "description", "address", contact=obj("name", "email", "phone"), connections=Items(CONNECTION))
DOCUMENT = obj("version", organizations=Items(ORGANIZATION), gpg_keys=Items(obj("name", "public_key")), projects=Items(PROJECT))


# Where an error found on a model field is reported (SPEC §12: each error names its JSON path):
# the field's JSON key below its object, for the fields whose key differs from the field's name.
ORGANIZATION_FIELD_KEYS = {"contact_name": "contact.name", "contact_email": "contact.email", "contact_phone": "contact.phone"}
PROJECT_FIELD_KEYS = {
    "cron": "triggers.cron", "interval_every": "triggers.interval.every", "interval_unit": "triggers.interval.unit",
    "once_at": "triggers.once", "start_at": "triggers.start", "end_at": "triggers.end",
}
TASK_FIELD_KEYS = {
    "retry_max": "retries.max", "retry_delay_minutes": "retries.delay_minutes", "retry_backoff": "retries.backoff",
    "retry_on_every_failure": "retries.on_every_failure",
    **{f"source_{key}": f"source.{key}" for key in ("kind", "connection", "headers", "fail_on_empty", "path", "missing_ok",
                                                      "delimiter", "stdout_as_file")},
    "processing_entry": "processing.entry", "processing_requirements": "processing.requirements", "script_network": "processing.network",
    **{f"output_{key}": f"output.{key}" for key in ("type", "name", "delimiter", "headers", "quoting", "escape_char", "encoding",
                                                      "line_ending", "line_suffix")},
    "zip_enabled": "output.zip", "zip_name": "output.zip.name", "gpg_key": "output.gpg.key", "gpg_armor": "output.gpg.armor",
}
NOTIFICATION_FIELD_KEYS = {"recipients": "to"}


def problems(document: Any) -> list[str]:
    """Every unknown key and every string with a forbidden control character, as "path: message"."""
    found: list[str] = []
    _walk(DOCUMENT, document, "", found)
    return found


def _step(path: str, key: str) -> str:
    if not PLAIN_KEY.fullmatch(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def _walk(node: Node, value: Any, path: str, found: list[str]) -> None:
    if isinstance(node, Items) and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(node.item, item, f"{path}[{i}]", found)
    elif isinstance(node, (Obj, ByKind)) and isinstance(value, dict):
        keys, hint = _keys_of(node, value)
        for key, child in value.items():
            if key not in keys:
                found.append(f"{_step(path, key)}: unknown key{hint}")
            elif keys[key] is None:
                _check_text(key, child, _step(path, key), found)
            else:
                _walk(keys[key], child, _step(path, key), found)


def _keys_of(node: Obj | ByKind, value: dict) -> tuple[Mapping[str, Node], str]:
    if isinstance(node, Obj):
        return node.keys, ""
    kind = value.get(node.field)
    shape = node.shapes.get(kind) if isinstance(kind, str) else None
    if shape is None:
        # An unknown kind is the importer's to report; meanwhile any key of any kind passes.
        return {key: child for s in node.shapes.values() for key, child in s.keys.items()}, ""
    article = "an" if kind[0] in "aeiou" else "a"
    return shape.keys, f" ({article} {kind} {node.what} takes {', '.join(sorted(shape.keys))})"


def _check_text(key: str, value: Any, path: str, found: list[str]) -> None:
    if not isinstance(value, str):
        return
    allowed = "" if key in NAME_KEYS else LINE_BREAKS if key in MULTILINE_KEYS else TAB
    if problem := control_character_problem(value, allowed):
        found.append(f"{path}: {problem}")
