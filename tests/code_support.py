"""Reading the project's own code in the tests that check its shape (imports, states, settings)."""

from __future__ import annotations

import ast
import gc
from pathlib import Path


def parse(source: str, filename: str = "<test>") -> ast.Module:
    """`ast.parse` with the garbage collector held off.

    CPython 3.11 fails a parse with "SystemError: AST constructor recursion
    depth mismatch" when a collection during it runs a finalizer that raises
    (seen in CI: a paramiko file left over by an earlier test, closing over
    its dead session). Nothing is collected during the parse; what is
    garbage then waits for the next collection after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source, filename)
    finally:
        if was_enabled:
            gc.enable()


def parse_file(path: Path) -> ast.Module:
    return parse(path.read_text(encoding="utf-8"), str(path))
