"""What a processing script needs installed: from its package, its task, or its imports (SPEC §3.7).

Order of preference: `requirements.txt` / `pyproject.toml` in the package
together with the task's requirements field; only when both say nothing are
the script's own imports read (standard library and the package's own modules
left out, import names mapped to the distributions that provide them).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

# Import names whose distribution on PyPI is called differently. Keys may be
# dotted: the longest matching prefix of an import wins.
IMPORT_TO_DIST = {
    "attr": "attrs",
    "Bio": "biopython",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "dns": "dnspython",
    "docx": "python-docx",
    "dotenv": "python-dotenv",
    "fitz": "PyMuPDF",
    "gi": "PyGObject",
    "git": "GitPython",
    "github": "PyGithub",
    "gitlab": "python-gitlab",
    "gnupg": "python-gnupg",
    "google.auth": "google-auth",
    "google.oauth2": "google-auth",
    "google.protobuf": "protobuf",
    "googleapiclient": "google-api-python-client",
    "jose": "python-jose",
    "jwt": "PyJWT",
    "kafka": "kafka-python",
    "ldap": "python-ldap",
    "magic": "python-magic",
    "markdown": "Markdown",
    "mpl_toolkits": "matplotlib",
    "MySQLdb": "mysqlclient",
    "nacl": "PyNaCl",
    "OpenSSL": "pyOpenSSL",
    "PIL": "Pillow",
    "pkg_resources": "setuptools",
    "pptx": "python-pptx",
    "psycopg2": "psycopg2-binary",
    "ruamel.yaml": "ruamel.yaml",
    "serial": "pyserial",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "slugify": "python-slugify",
    "smb": "pysmb",
    "smbclient": "smbprotocol",
    "snowflake.connector": "snowflake-connector-python",
    "telegram": "python-telegram-bot",
    "usb": "pyusb",
    "yaml": "PyYAML",
    "zmq": "pyzmq",
}
# Top-level names shared by many distributions: the dotted module path names the
# distribution (azure.storage.blob -> azure-storage-blob).
NAMESPACE_TOPS = {"azure", "google"}
# Folders never read for imports: tooling, not the script.
SKIP_DIRS = {"__pycache__", "venv", "env", "site-packages", "node_modules", "tests", "test"}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
FROM_IMPORTS = "the script's imports"


class RequirementsError(Exception):
    """A requirements file that cannot be read; the message names it."""


@dataclass(frozen=True)
class Requirements:
    lines: tuple[str, ...]
    origin: str  # where they came from, for the log

    def __bool__(self) -> bool:
        return bool(self.lines)


def resolve(root: Path, entry: Path, task_field: str, *, package: bool) -> Requirements:
    """The requirement lines for the script `entry` inside `root` (a package or a lone file's folder)."""
    declared, origins = [], []
    if package:
        for folder in dict.fromkeys([entry.parent, root]):
            found, names = _package_files(folder, root)
            declared += found
            origins += names
    own = list(_requirement_lines(task_field.splitlines(), None, root))
    if own:
        origins.append("the task's requirements field")
    if declared or own:
        return Requirements(normalize(declared + own), " and ".join(origins))
    return Requirements(normalize(import_requirements(root, entry)), FROM_IMPORTS)


def normalize(lines: Iterable[str]) -> tuple[str, ...]:
    """One spelling per requirement (PEP 503 name), sorted, without duplicates: the cache key depends on it."""
    out = set()
    for line in lines:
        line = line.strip()
        if line and not line.startswith("-"):
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
            if match:
                line = re.sub(r"[-_.]+", "-", match.group(0)).lower() + line[match.end():]
        if line:
            out.add(line)
    return tuple(sorted(out))


# ----------------------------------------------------------------------------
# Declared requirements


def _package_files(folder: Path, root: Path) -> tuple[list[str], list[str]]:
    lines, names = [], []
    txt = folder / "requirements.txt"
    if txt.is_file():
        lines += _requirement_lines(_read(txt).splitlines(), txt, root)
        names.append(str(txt.relative_to(root)))
    toml = folder / "pyproject.toml"
    if toml.is_file():
        try:
            project = tomllib.loads(_read(toml)).get("project", {})
        except tomllib.TOMLDecodeError as exc:
            raise RequirementsError(f"{toml.relative_to(root)} is not valid TOML: {exc}") from None
        deps = project.get("dependencies", [])
        if deps:
            lines += [str(d) for d in deps]
            names.append(str(toml.relative_to(root)))
    return lines, names


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequirementsError(f"Cannot read {path.name}: {exc}") from None


def _requirement_lines(raw: Iterable[str], source: Path | None, root: Path, depth: int = 0) -> Iterator[str]:
    """Lines of a requirements file without comments; `-r other.txt` is read in place (inside the package only)."""
    for line in _joined(raw):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        include = re.match(r"(?:-r|--requirement)[\s=]+(\S+)$", line)
        if include and source is not None and depth < 5:
            target = (source.parent / include.group(1)).resolve()
            if not target.is_relative_to(root.resolve()) or not target.is_file():
                raise RequirementsError(f"{source.name} includes {include.group(1)}, which is not a file in the package.")
            yield from _requirement_lines(_read(target).splitlines(), target, root, depth + 1)
        elif line:
            yield line


def _joined(raw: Iterable[str]) -> Iterator[str]:
    pending = ""
    for line in raw:
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


# ----------------------------------------------------------------------------
# Requirements read from imports


class _ImportVisitor(ast.NodeVisitor):
    """Absolute imports, except those inside `try: … except ImportError:` (optional by the script's own say)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._optional = 0

    def visit_Try(self, node: ast.Try) -> None:
        guarded = any(_catches_import_error(h) for h in node.handlers)
        self._optional += guarded
        for stmt in node.body:
            self.visit(stmt)
        self._optional -= guarded
        for stmt in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        if not self._optional:
            self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if self._optional or node.level or not node.module:
            return
        if node.module.split(".")[0] in NAMESPACE_TOPS:
            # `from google.cloud import storage`: the imported name may be the module that names the distribution.
            self.names.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
        else:
            self.names.add(node.module)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(k is None or (isinstance(k, ast.Name) and k.id in IMPORT_ERRORS) for k in kinds)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def file_imports(path: Path) -> set[str]:
    """Dotted module names imported by one file; a file Python cannot parse gives none (running it will say why)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return set()
    visitor = _ImportVisitor()
    visitor.visit(tree)
    return visitor.names


def local_modules(folders: Iterable[Path]) -> dict[str, Path]:
    """Top-level modules the script can import from its own files: name -> file or package folder."""
    found: dict[str, Path] = {}
    for folder in folders:
        for child in sorted(folder.iterdir()):
            if child.is_file() and child.suffix == ".py":
                found.setdefault(child.stem, child)
            elif child.is_dir() and not child.name.startswith(".") and any(child.glob("*.py")):
                found.setdefault(child.name, child)
    return found


def import_requirements(root: Path, entry: Path) -> list[str]:
    """Distributions for the third-party imports of `entry` and of the local modules it imports."""
    local = local_modules(dict.fromkeys([entry.parent, root]))
    seen_files: set[Path] = set()
    pending = [entry]
    imported: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for name in file_imports(path):
            top = name.split(".")[0]
            if top in local:
                pending += _python_files(local[top])
            else:
                imported.add(name)
    return sorted({dist for name in imported if (dist := distribution_for(name))})


def _python_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return [p for p in target.rglob("*.py") if not (SKIP_DIRS | {".git"}) & set(p.relative_to(target).parts[:-1])]


def distribution_for(module: str) -> str | None:
    """The distribution to install for an imported module, or None for the standard library."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in ("__future__", "__main__"):
        return None
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        mapped = IMPORT_TO_DIST.get(".".join(parts[:size]))
        if mapped:
            return mapped
    if top in NAMESPACE_TOPS:
        return _namespace_distribution(parts)
    return top


def _namespace_distribution(parts: list[str]) -> str | None:
    """azure.storage.blob -> azure-storage-blob: module names are lower case, classes imported from them are not."""
    names = list(takewhile(lambda p: p == p.lower(), parts))[:3]
    if names and names[-1] == "aio":  # the asyncio flavour of the same distribution
        names.pop()
    wanted = 3 if names[:2] == ["google", "cloud"] else 2
    return "-".join(names) if len(names) >= wanted else None
