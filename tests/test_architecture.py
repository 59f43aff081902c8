"""The layers, read from the code's imports (STYLE.md §15; docs/architecture.md).

Every `import` and `from … import` of the apps is read with `ast`, those
inside functions included, so a cycle cannot hide behind a late import.

- No module imports itself back through others: no cycle anywhere.
- Models and plain modules import one way, connections ← projects ← tasks ←
  runs. Only the presentation layer (views, admin, forms, tables, filters,
  pages, commands, template tags, urls, app configs, migrations) may import
  from any app — and even it does not climb into another app's presentation
  helpers, which must sit where every app may import them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: an app may import from the apps before it.
APPS = ("connections", "projects", "tasks", "runs")
SCANNED = (*APPS, "etlsite")
PRESENTATION = {"views", "admin", "forms", "tables", "filters", "pages", "urls", "apps", "templatetags", "management", "migrations"}

# Known breaches outside runs/, each to be removed by the change that fixes it (issue 14);
# the tests fail on any other breach, and on an entry here that no longer happens.
KNOWN_CYCLES: set[frozenset[str]] = {
    # The importer and its sections call each other (sections.py imports the importer inside a function).
    frozenset({"tasks.configuration.importer", "tasks.configuration.sections"}),
}
KNOWN_CLIMBS: set[tuple[str, str]] = {
    # A project's parameters are parsed and resolved by tasks' parameter language.
    ("projects.models", "tasks.parameters"),
    # Orphan detection reads scheduled retries; a project's scheduling that touches runs belongs with runs.
    ("projects.scheduling", "runs.models"),
    # The demo loader builds tasks for its projects.
    ("projects.demo", "tasks.models"),
    # A task's preview simulates a run with the pipeline's helpers; it belongs with runs or should call down into it.
    ("tasks.preview", "runs.pipeline.context"),
    ("tasks.preview", "runs.pipeline.errors"),
    ("tasks.preview", "runs.pipeline.naming"),
    # The task list annotates each task with its latest run.
    ("tasks.queries", "runs.models"),
    # The shared page layer lives in tasks/: it should move where every app may import it (e.g. etlsite/).
    ("projects.views", "tasks.filters"),
    ("projects.views", "tasks.pages"),
    ("projects.views", "tasks.tables"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    return {
        module_name(path): path
        for app in SCANNED
        for path in sorted((ROOT / app).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _nearest(name: str, known: dict[str, Path]) -> str | None:
    """The module `name` lands in: itself, or the closest package or module above it."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every scanned module that `module` imports, wherever the import statement stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, path)
            # `from runs import services` imports the module runs.services; `from runs.models import Run` imports runs.models.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            target = _nearest(name, known)
            if target is not None and target != module:
                yield target


def import_graph() -> dict[str, set[str]]:
    known = source_files()
    return {module: set(imports_of(module, path, known)) for module, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def a_path(graph: dict[str, set[str]], group: list[str]) -> str:
    """The shortest loop through the group's first module, to say where to cut it."""
    start = group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while start not in came_from:  # breadth first, so the loop found is a shortest one
        reached = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt in group and nxt not in came_from:
                    came_from[nxt] = node
                    reached.append(nxt)
        frontier = reached
    path = [start]
    while len(path) == 1 or path[-1] != start:
        path.append(came_from[path[-1]])
    return " → ".join(reversed(path))


def app_of(module: str) -> str:
    return module.split(".")[0]


def is_presentation(module: str) -> bool:
    return any(part in PRESENTATION for part in module.split(".")[1:])


def climbs(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports that go up the app order, and are not a presentation module reaching into a higher app's logic."""
    rank = {app: number for number, app in enumerate(APPS)}
    found = set()
    for module, targets in graph.items():
        if app_of(module) not in rank:
            continue
        for target in targets:
            if app_of(target) not in rank or rank[app_of(target)] <= rank[app_of(module)]:
                continue
            # A plain module climbs with any upward import; a presentation module only by
            # borrowing another app's presentation helpers.
            if not is_presentation(module) or is_presentation(target):
                found.add((module, target))
    return found


# --------------------------------------------------------------------------


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("import os\n\ndef later():\n    from runs import services\n    from runs.models import Run\n")
    known = source_files()
    assert set(imports_of("tasks.mod", path, known)) == {"runs.services", "runs.models"}


def test_the_cycle_finder_finds_a_loop_and_names_it():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert a_path(graph, ["a", "b", "c"]) == "a → b → c → a"
    dead_end = {"a": {"b"}, "b": {"c", "d"}, "c": {"b"}, "d": {"a"}}
    assert a_path(dead_end, cycles(dead_end)[0]) == "a → b → d → a"


def test_no_import_cycle_between_modules():
    graph = import_graph()
    found = {frozenset(group): group for group in cycles(graph)}
    new = [f"{', '.join(group)}; for example {a_path(graph, group)}" for key, group in found.items() if key not in KNOWN_CYCLES]
    assert not new, "Import cycles (cut them; never hide one in a function):\n" + "\n".join(new)
    fixed = [sorted(key) for key in KNOWN_CYCLES if key not in found]
    assert not fixed, f"These cycles are gone: remove them from KNOWN_CYCLES: {fixed}"


def test_models_and_plain_modules_import_down_the_app_order_only():
    found = climbs(import_graph())
    new = sorted(found - KNOWN_CLIMBS)
    assert not new, "Imports that climb connections ← projects ← tasks ← runs:\n" + "\n".join(f"{a} → {b}" for a, b in new)
    fixed = sorted(KNOWN_CLIMBS - found)
    assert not fixed, f"These imports are gone: remove them from KNOWN_CLIMBS: {fixed}"


def test_the_run_engine_imports_down_its_own_layers():
    """Inside runs/ (the top app, so the app order cannot see it) each layer calls only the layers below it.

    A module may import from its own layer and those listed before it, never
    from one listed after it; modules not listed here are not constrained.
    And nothing but the presentation layer calls the front door.
    """
    graph = import_graph()
    pipeline = {m for m in graph if m.startswith("runs.pipeline")}
    layers = [
        {"runs.models"},
        {"runs.state", "runs.ticker", "runs.transient"},
        pipeline,
        {"runs.sequence", "runs.retries", "runs.notify", "runs.followups"},
        {"runs.runner", "runs.reaper", "runs.firing"},
        {"runs.services"},
    ]
    level = {module: number for number, layer in enumerate(layers) for module in layer}
    upward = sorted(
        (module, target)
        for module, targets in graph.items() if module in level
        for target in targets if level.get(target, -1) > level[module]
    )
    assert not upward, "Imports that reach up the run engine's layers:\n" + "\n".join(f"{a} → {b}" for a, b in upward)
    callers = sorted(m for m, targets in graph.items() if "runs.services" in targets and not is_presentation(m))
    assert not callers, f"Only pages, admin and commands use the front door (runs/services.py): {callers}"
