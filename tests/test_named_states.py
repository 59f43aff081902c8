"""Run states, their sets and stage names are written once, on the model (runs/models.py), and named everywhere else.

A grep over the code's syntax tree of runs/, tasks/ and projects/ (models and
migrations aside): a state or stage compared, passed or stored as a bare
string ("skipped", "source"), or a set of states spelled out again
(`(RunStatus.QUEUED, RunStatus.RUNNING)`), fails with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

from runs.models import RunStatus, Stage
from tests.code_support import parse, parse_file

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("runs", "tasks", "projects")
STATES = {choice.value for choice in RunStatus}
STAGES = {choice.value for choice in Stage}
# Where a bare string stands for a state or a stage: keyword arguments and calls that take one.
STATE_KEYWORDS = {"status", "status__in", "stage", "error_stage"}
STAGE_CALLS = {"StageFailure", "info", "warning", "error", "write"}


def code_files() -> list[Path]:
    return [
        path for app in SCANNED for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts and path.name != "models.py"
    ]


def _strings(node: ast.AST) -> list[str]:
    """The string constants of a node, or of the tuple, list or set it is."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [item.value for item in items if isinstance(item, ast.Constant) and isinstance(item.value, str)]


def _states_spelled_out(node: ast.AST) -> bool:
    members = [
        item for item in getattr(node, "elts", [])
        if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) and item.value.id == "RunStatus"
    ]
    return len(members) >= 2


def _call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def findings(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and _states_spelled_out(node):
            found.append((node.lineno, "a set of run states spelled out: name it on the Run model"))
        elif isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                found += [(node.lineno, f"state or stage “{text}” compared as a string") for text in _strings(operand)
                          if text in STATES | STAGES]
        elif isinstance(node, ast.keyword) and node.arg in STATE_KEYWORDS:
            found += [(node.value.lineno, f"“{text}” passed as {node.arg}") for text in _strings(node.value)
                      if text in STATES | STAGES]
        elif isinstance(node, ast.Call) and _call_name(node) in STAGE_CALLS and node.args:
            found += [(node.lineno, f"stage “{text}” passed as a string") for text in _strings(node.args[0]) if text in STAGES]
        elif isinstance(node, ast.Assign):
            named = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.endswith("STAGE")]
            found += [(node.lineno, f"{name} = “{text}”: use the Stage enum") for name in named
                      for text in _strings(node.value) if text in STAGES]
    return found


def test_the_grep_catches_each_way_of_writing_a_state_by_hand():
    code = """
STAGE = "source"
if run.status == "skipped": pass
Run.objects.filter(status__in=["queued", "running"])
BUSY = (RunStatus.QUEUED, RunStatus.RUNNING)
raise StageFailure("delivery", "gone")
ctx.log.info("output", "done")
"""
    assert sorted({line for line, _ in findings(parse(code))}) == [2, 3, 4, 5, 6, 7]
    fine = 'ALL = Run.ACTIVE\nif run.status == RunStatus.SKIPPED: pass\nprefetch("parameters")\nparts = {"source": 1}\n'
    assert findings(parse(fine)) == []


def test_no_run_state_set_or_stage_name_is_written_outside_the_model():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in code_files()
        for line, what in findings(parse_file(path))
    ]
    assert not found, "\n".join(found)
