"""Tasks that run after other tasks: the graph of `Task.wait_for` must have no loop (refused when saving).

The forms, the admin and import_config call `refuse_cycle`; what a waiting
run does lives with the runs (runs/dependencies.py, runs/waiting.py).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from tasks.models import Task


def cycle_through(task: Task, proposed: list[Task]) -> list[Task] | None:
    """The loop `task` would close if it waited for `proposed` (task … task), or None.

    Walks what the proposed tasks wait for, as saved; `task` itself need
    not be saved yet (then nothing can wait for it, except itself).
    """
    if task.pk is None:
        return [task, task] if any(other is task for other in proposed) else None
    came_from: dict[int, Task | None] = {}
    frontier = []
    for other in proposed:
        if other.pk not in came_from:
            came_from[other.pk] = None
            frontier.append(other)
    while frontier:
        current = frontier.pop(0)
        if current.pk == task.pk:
            path = [current]
            while came_from[path[-1].pk] is not None:
                path.append(came_from[path[-1].pk])
            return [task, *reversed(path)]
        for nxt in current.wait_for.all():
            if nxt.pk not in came_from:
                came_from[nxt.pk] = current
                frontier.append(nxt)
    return None


def describe_cycle(path: list[Task]) -> str:
    return " → ".join(str(task) for task in path)


def refuse_cycle(task: Task, proposed: list[Task]) -> None:
    """A clear error naming the loop, if waiting for `proposed` would close one."""
    path = cycle_through(task, list(proposed))
    if path is not None:
        raise ValidationError(f"These tasks would wait for each other for ever: {describe_cycle(path)}.")
