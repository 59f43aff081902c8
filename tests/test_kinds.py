"""The registry of connection kinds is the one place that knows them (connections/kinds.py).

Each kind's entry must agree with the Connection model and with its client;
everything else (choices, forms, export, pipeline) derives from it, so no app
module compares a kind with a literal, and a new kind needs no migration.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connections import kinds
from connections.clients.base import Client
from connections.kinds import KINDS, Reads
from connections.models import SECRET_FIELDS, Connection
from tasks.models import CodeLocation, Destination, Task
from tests.code_support import parse_file

ROOT = Path(__file__).resolve().parent.parent
APPS = ("connections", "projects", "tasks", "runs", "etlsite")

# The verbs (connections/clients/base.py) each use needs from a kind's client.
NEEDS = {
    Reads.QUERY: {"run_query"},
    Reads.FILES: {"entries", "download"},
    Reads.COMMAND: {"run_command"},
    "destination": {"upload"},
    "path": {"entries", "download"},  # a package folder is copied entry by entry
    "url": {"fetch"},
}


def _needed_verbs(kind: kinds.Kind) -> set[str]:
    verbs = {"test"}
    if kind.source:
        verbs |= NEEDS[kind.source.reads]
    if kind.destination:
        verbs |= NEEDS["destination"]
    if kind.code:
        verbs |= NEEDS[kind.code.address]
    return verbs


@pytest.mark.parametrize("key", sorted(KINDS))
def test_each_client_is_a_client_that_does_what_its_kind_is_used_for(key):
    kind = KINDS[key]
    client = kind.client_class
    assert issubclass(client, Client)
    missing = {verb for verb in _needed_verbs(kind) if getattr(client, verb) is getattr(Client, verb)}
    assert not missing, f"{client.__name__} does not implement {sorted(missing)}"


@pytest.mark.parametrize("key", sorted(KINDS))
def test_each_entry_agrees_with_the_connection_model(key):
    kind = KINDS[key]
    model_fields = {f.name for f in Connection._meta.fields}
    assert kind.key == key and len(key) <= Destination._meta.get_field("kind").max_length
    assert set(kind.fields) <= model_fields - {"organization", "name", "kind", "description"}
    assert set(kind.required) <= set(kind.fields)
    assert kind.secrets == tuple(f for f in kind.fields if f in SECRET_FIELDS), "secrets are exactly its encrypted fields"
    assert (kind.default_port is not None) == ("port" in kind.fields)
    assert {field for field, _ in kind.config_keys} <= set(kind.fields)
    if kind.code:
        assert {kind.code.address, *kind.code.also} <= {f.name for f in CodeLocation._meta.fields}


def test_every_choice_list_comes_from_the_registry():
    def values(model, field):
        return [value for value, _ in model._meta.get_field(field).choices]

    assert values(Connection, "kind") == list(KINDS)
    assert values(Task, "source_kind") == [k for k, v in KINDS.items() if v.source] + ["python"]
    assert values(CodeLocation, "location") == ["inline"] + [k for k, v in KINDS.items() if v.code]
    assert values(Destination, "kind") == [k for k, v in KINDS.items() if v.destination]


def test_a_connection_is_checked_by_its_kind():
    conn = Connection(kind="folder", folder="relative/out")
    assert KINDS["folder"].problems(conn) == {"folder": "The base folder of a local folder connection must be an absolute path."}
    assert KINDS["smb"].problems(Connection(kind="smb", host="fs")) == {
        "share": "A SMB connection needs a share.", "username": "A SMB connection needs a username."}
    assert Connection(kind="smb").effective_port == 445 and Connection(kind="smb", port=1445).effective_port == 1445


# Protocol knowledge that is not a kind's: GitLab's own URL forms for git packages (issue 14, tokens work).
ALLOWED = {("tasks/packages.py", "git_source"), ("tasks/packages.py", "_git_headers")}
KIND_NAMES = {"kind", "source_kind", "location"}
KIND_ENUMS = {"SourceKind", "CodeLocationKind", "DestinationKind"}


def _is_kind_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in KINDS
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_kind_literal(item) for item in node.elts)
    # SourceKind.SFTP and the like: a connection kind named outside the registry.
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in KIND_ENUMS
            and node.attr.lower() in KINDS)


def _is_kind_value(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in KIND_NAMES) or (isinstance(node, ast.Name) and node.id in KIND_NAMES)


class _KindComparisons(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path, self.function, self.found = path, "", []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    def visit_Compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        allowed = (self.path, self.function) in ALLOWED
        if not allowed and any(map(_is_kind_value, operands)) and any(map(_is_kind_literal, operands)):
            self.found.append(f"{self.path}:{node.lineno} {ast.unparse(node)}")
        self.generic_visit(node)


def _kind_comparisons(path: Path) -> list[str]:
    visitor = _KindComparisons(str(path.relative_to(ROOT)))
    visitor.visit(parse_file(path))
    return visitor.found


def test_no_app_module_compares_a_kind_with_a_literal():
    modules = [p for app in APPS for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]
    found = sorted({hit for path in modules for hit in _kind_comparisons(path)})
    assert not found, "ask the registry (connections/kinds.py) instead:\n" + "\n".join(found)


NEW_KIND = """
import sys
import django
from connections import kinds

# A hypothetical new file server, written as one more entry of the registry.
kinds.KINDS["webdav"] = kinds.Kind(
    "webdav", "WebDAV", "connections.clients.folder.FolderClient", fields=("folder",), required=("folder",),
    source=kinds.SourceUse("WebDAV file", kinds.Reads.FILES), destination="WebDAV", code=kinds.CodeUse("WebDAV", "path"),
)
django.setup()
from django.core.management import call_command
from connections.models import Connection
from tasks import forms
from tasks.configuration.exporter import connection_data
from tasks.models import CodeLocationKind, DestinationKind, SourceKind

call_command("makemigrations", "--check", "--dry-run", verbosity=0)
assert "webdav" in dict(Connection._meta.get_field("kind").choices)
assert SourceKind("webdav").label == "WebDAV file" and "webdav" in CodeLocationKind.values and "webdav" in DestinationKind.values
assert "webdav" in forms.FILE_SOURCES and "webdav" in forms.TASK_SHOW["source_path"][1] and "webdav" in forms.CODE_SHOW["path"][1]
assert connection_data(Connection(kind="webdav", name="dav", folder="/srv/dav"), False) == {"kind": "webdav", "name": "dav", "folder": "/srv/dav"}
print("a new kind needs no migration and is offered everywhere")
"""


def test_a_new_kind_is_one_registry_entry_and_needs_no_migration():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run([sys.executable, "-c", NEW_KIND], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "a new kind needs no migration and is offered everywhere" in done.stdout
