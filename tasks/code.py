"""Loading a task's query, command or script text from its code location."""

from __future__ import annotations

from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Task


class CodeError(Exception):
    """The code cannot be had; `permanent` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


def code_location(task: Task, role: str) -> CodeLocation | None:
    # Prefetched by the runner: filter in Python to avoid a query per call.
    return next((c for c in task.code_locations.all() if c.role == role), None)


def load_text(task: Task, role: str = CodeRole.SOURCE, warn=None) -> str:
    """The code's text before parameters are inserted. `warn(message)` reports a fallback to the cache."""
    code = code_location(task, role)
    if code is None:
        what = "query or command" if role == CodeRole.SOURCE else "processing script"
        raise CodeError(f"The task has no {what}.")
    if code.location == CodeLocationKind.INLINE:
        return code.text
    raise CodeError(f"Code from {code.get_location_display()} is not supported yet.")
