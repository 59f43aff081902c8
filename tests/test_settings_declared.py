"""Every setting is declared once in etlsite/settings.py, read with django-environ, and documented in README.md.

Read from the source with `ast`: the variables settings.py reads from the
environment, the rows of the README's settings table, and every setting the
apps read — which must be one settings.py declares (or one of Django's own),
never a `getattr(settings, …)` with a default of its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from tests.code_support import parse_file

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "etlsite" / "settings.py"
APPS = ("connections", "projects", "tasks", "runs", "etlsite")


def environment_names() -> set[str]:
    """The variables settings.py reads: env.<type>("NAME", …) and os.environ.get("NAME", …)."""
    names = set()
    for node in ast.walk(parse_file(SETTINGS)):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        func = ast.unparse(node.func)
        if re.fullmatch(r"env\.\w+|os\.environ\.get", func) and isinstance(node.args[0].value, str):
            names.add(node.args[0].value)
    return names


def declared_settings() -> set[str]:
    """The upper-case names settings.py assigns."""
    tree = parse_file(SETTINGS)
    return {target.id for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name) and target.id.isupper()}


def readme_table() -> set[str]:
    section = (ROOT / "README.md").read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z_]+)`", cell)}


def settings_read_by_the_apps() -> dict[str, list[str]]:
    """setting name → where the apps read it, as `settings.NAME` or `getattr(settings, "NAME", …)`."""
    found: dict[str, list[str]] = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if path == SETTINGS or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "settings" and node.attr.isupper():
                    found.setdefault(node.attr, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def getattr_reads() -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
        for app in APPS for path in sorted((ROOT / app).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr" and node.args and ast.unparse(node.args[0]) == "settings"
    ]


def test_the_readers_find_what_they_look_for():
    assert {"SECRET_KEY", "COURIER_SECRET_KEYS", "DATABASE_URL", "COURIER_ENV_FILE"} <= environment_names()
    assert {"SECRET_KEY", "COURIER_RETENTION_DAYS", "COURIER_RETENTION_KEEP"} <= readme_table()
    assert "COURIER_WORK_DIR" in settings_read_by_the_apps()


def test_every_variable_settings_py_reads_is_in_the_readme_table():
    missing = sorted(environment_names() - readme_table())
    assert not missing, f"Read in etlsite/settings.py but not in README.md's settings table: {missing}"


def test_the_readme_table_names_no_variable_that_is_not_read():
    unknown = sorted(readme_table() - environment_names())
    assert not unknown, f"In README.md's settings table but never read by etlsite/settings.py: {unknown}"


def test_the_apps_read_only_declared_settings_and_never_with_a_default_of_their_own():
    assert not getattr_reads(), "Read a setting as settings.NAME (declared in etlsite/settings.py):\n" + "\n".join(getattr_reads())
    known = declared_settings() | {name for name in dir(global_settings) if name.isupper()}
    undeclared = {name: where for name, where in settings_read_by_the_apps().items() if name not in known}
    assert not undeclared, f"Settings the apps read that etlsite/settings.py does not declare: {undeclared}"


@pytest.mark.parametrize("heartbeat, reap_after, message", [
    ("0", "150", "COURIER_HEARTBEAT_SECONDS must be more than 0, not 0."),
    ("15", "20", "COURIER_REAP_AFTER_SECONDS (20) must be at least twice COURIER_HEARTBEAT_SECONDS (15)."),
])
def test_a_reaper_that_would_fail_live_runs_is_refused_at_start(monkeypatch, heartbeat, reap_after, message):
    monkeypatch.setenv("COURIER_HEARTBEAT_SECONDS", heartbeat)
    monkeypatch.setenv("COURIER_REAP_AFTER_SECONDS", reap_after)
    with pytest.raises(ImproperlyConfigured) as refused:
        exec(compile(SETTINGS.read_text(), str(SETTINGS), "exec"), {"__file__": str(SETTINGS), "__name__": "settings_check"})
    assert str(refused.value) == message
