"""The layers, read from the code's imports (STYLE.md §15; docs/architecture.md).

Every `import` and `from … import` of the apps is read with `ast`, those
inside functions included, so a cycle cannot hide behind a late import.

- No module imports itself back through others: no cycle anywhere.
- Models and plain modules import one way, connections ← projects ← tasks ←
  runs. Only the presentation layer (views, admin, forms, tables, filters,
  pages, charts, commands, template tags, urls, app configs, migrations) may
  import from any app — and even it does not climb into another app's
  presentation helpers, which sit in the site's page layer (etlsite/pages.py,
  tables.py, filters.py) where every app may import them.
- Courier modules are imported at the top of a module; an import inside a
  function or class says why in a "# Late import:" comment just above it,
  and never to dodge a cycle.

There are no known exceptions: the tests fail on any breach.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.code_support import parse_file

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: an app may import from the apps before it.
APPS = ("connections", "projects", "tasks", "runs")
SCANNED = (*APPS, "etlsite")
PRESENTATION = {
    "views", "admin", "forms", "tables", "filters", "pages", "charts", "urls", "apps", "templatetags", "management", "migrations",
}
# The page layer every app's pages share: in the site, above every app's models and logic, below their pages.
PAGE_LAYER = {"etlsite.pages", "etlsite.tables", "etlsite.filters", "etlsite.times"}
LATE_IMPORT_NOTE = "# Late import:"

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
    yield from imports_of_tree(module, path, known, parse_file(path))


def imports_of_tree(module: str, path: Path, known: dict[str, Path], tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
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


def _comment_above(lines: list[str], lineno: int) -> str:
    """The comment lines written just above line `lineno` (1-based), joined."""
    above = []
    for line in reversed(lines[: lineno - 1]):
        if not line.strip().startswith("#"):
            break
        above.insert(0, line.strip())
    return " ".join(above)


def late_imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[int, str, str]]:
    """(line, imported module, the comment above) of each Courier import inside a function or class."""
    tree = parse_file(path)
    lines = path.read_text().splitlines()
    scopes = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    inside = {node for scope in scopes for node in ast.walk(scope) if isinstance(node, (ast.Import, ast.ImportFrom))}
    for node in sorted(inside, key=lambda node: node.lineno):
        for target in sorted(set(imports_of_tree(module, path, known, node))):
            yield node.lineno, target, _comment_above(lines, node.lineno)


def unexplained(comment: str) -> bool:
    """True unless the comment gives a reason that is not a cycle dodge."""
    reason = comment.partition(LATE_IMPORT_NOTE)[2].strip()
    return not reason or any(word in reason.lower() for word in ("cycle", "circular"))


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
    found = [f"{', '.join(group)}; for example {a_path(graph, group)}" for group in cycles(graph)]
    assert not found, "Import cycles (cut them; never hide one in a function):\n" + "\n".join(found)


def test_models_and_plain_modules_import_down_the_app_order_only():
    found = sorted(climbs(import_graph()))
    assert not found, "Imports that climb connections ← projects ← tasks ← runs:\n" + "\n".join(f"{a} → {b}" for a, b in found)


def test_the_shared_page_layer_is_used_by_pages_only_and_uses_no_page():
    """The page layer imports the apps' models and logic, never their pages; only presentation imports it."""
    graph = import_graph()
    users = sorted((m, t) for m, targets in graph.items() for t in targets & PAGE_LAYER if not is_presentation(m))
    assert not users, "Models and plain modules that import the page layer:\n" + "\n".join(f"{a} → {b}" for a, b in users)
    borrowed = sorted((m, t) for m in PAGE_LAYER for t in graph.get(m, ())
                      if app_of(t) in APPS and is_presentation(t))
    assert not borrowed, "The page layer imports an app's pages:\n" + "\n".join(f"{a} → {b}" for a, b in borrowed)


def test_the_late_import_finder_sees_imports_in_functions_and_classes_and_reads_the_reason(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text(
        "import os\n\n"
        "def ready():\n    # Late import: signal receivers connect once the models are loaded.\n    from projects import scheduling\n\n"
        "def dodge():\n    # Late import: to break the cycle with runs.\n    from runs import services\n\n"
        "class Inline:\n    from tasks.models import Task\n"
    )
    found = list(late_imports("tasks.mod", path, source_files()))
    assert [(line, target) for line, target, _ in found] == [(5, "projects.scheduling"), (9, "runs.services"), (12, "tasks.models")]
    assert [unexplained(comment) for _, _, comment in found] == [False, True, True]


def test_courier_modules_are_imported_at_the_top_unless_a_comment_says_why():
    known = source_files()
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {target}" + (f" ({comment})" if comment else "")
        for module, path in known.items() if app_of(module) in APPS
        for line, target, comment in late_imports(module, path, known) if unexplained(comment)
    ]
    assert not found, (
        f"Imports inside a function or class: move them to the top, or write why just above ({LATE_IMPORT_NOTE} …;"
        " a cycle is no reason — cut it):\n" + "\n".join(found)
    )


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
        {"runs.state", "runs.ticker", "runs.queries", "runs.dependencies", "runs.transient"},
        pipeline,
        {"runs.sequence", "runs.retries", "runs.notify", "runs.followups", "runs.catchup", "runs.waiting", "runs.lateness", "runs.resend"},
        {"runs.runner", "runs.reaper", "runs.firing", "runs.preview", "runs.orphans", "runs.watch"},
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
