"""The schedule-integrity keys of the export/import format (docs/configuration.md, issue 18).

A project's `missed_runs` ({"policy", "catch_up_minutes"}), a task's
`expected_by` ("HH:MM" or null) and `dependencies` ({"after": ["Project/task",
…], "window_minutes", "give_up_after_minutes"}). Dependencies name tasks that
may come later in the file, so they are set after every project is read
(`Dependencies.resolve`), and a loop among them is refused like on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

from projects.models import MissedPolicy, Project
from tasks.configuration.reader import Reader, kind_name
from tasks.dependencies import cycle_through, describe_cycle
from tasks.models import Task

DEFAULT_CATCH_UP_MINUTES = 360
DEFAULT_GIVE_UP_MINUTES = 360


def project_data(project: Project) -> dict:
    return {"missed_runs": {"policy": project.missed_policy, "catch_up_minutes": project.catch_up_minutes}}


def task_data(task: Task) -> dict:
    return {
        "expected_by": task.expected_by.strftime("%H:%M") if task.expected_by else None,
        "dependencies": {
            "after": sorted(str(other) for other in task.wait_for.all()),
            "window_minutes": task.wait_window_minutes,
            "give_up_after_minutes": task.wait_deadline_minutes,
        },
    }


def project_values(r: Reader, data: dict, path: str) -> dict:
    missed = r.obj(data.get("missed_runs", {}), f"{path}.missed_runs", nullable=True) or {}
    path = f"{path}.missed_runs"
    return {
        "missed_policy": r.choice(missed, "policy", path, MissedPolicy.values, default=MissedPolicy.NONE, what="policy")
        or MissedPolicy.NONE,
        "catch_up_minutes": r.number(missed, "catch_up_minutes", path, default=DEFAULT_CATCH_UP_MINUTES),
    }


def expected_by(r: Reader, data: dict, path: str) -> time | None:
    value = data.get("expected_by")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.strptime(value.strip(), "%H:%M").time()
        except ValueError:
            pass
    shown = f'"{value}"' if isinstance(value, str) else kind_name(value)
    r.error(f"{path}.expected_by", f"{shown} is not a time of day such as 07:30")
    return None


def task_values(r: Reader, data: dict, path: str) -> dict:
    waits = r.obj(data.get("dependencies", {}), f"{path}.dependencies", nullable=True) or {}
    path_deps = f"{path}.dependencies"
    return {
        "expected_by": expected_by(r, data, path),
        "wait_window_minutes": r.number(waits, "window_minutes", path_deps, default=None, nullable=True),
        "wait_deadline_minutes": r.number(waits, "give_up_after_minutes", path_deps, default=DEFAULT_GIVE_UP_MINUTES, minimum=1),
    }


def find_task(reference: str) -> Task | None:
    """The task named "Project/task" (either name may hold a "/": every split is tried)."""
    parts = reference.split("/")
    for cut in range(1, len(parts)):
        found = Task.objects.filter(project__name="/".join(parts[:cut]), name="/".join(parts[cut:])).first()
        if found is not None:
            return found
    return None


@dataclass
class Dependencies:
    """What each imported task runs after, set once every project of the file exists."""

    reader: Reader
    wanted: list[tuple[Task, list[str], str]] = field(default_factory=list)

    def read(self, task: Task, data: dict, path: str) -> None:
        waits = data.get("dependencies")
        path = f"{path}.dependencies"
        if not isinstance(waits, dict):
            self.wanted.append((task, [], path))
            return
        names = self.reader.items(waits, "after", path)
        for i, name in enumerate(names):
            if not isinstance(name, str):
                self.reader.error(f"{path}.after[{i}]", f'must be a "Project/task" name, not {kind_name(name)}')
        self.wanted.append((task, [name for name in names if isinstance(name, str)], path))

    def resolve(self) -> None:
        for task, names, path in self.wanted:
            found = []
            for i, name in enumerate(names):
                other = find_task(name)
                if other is None:
                    self.reader.error(f"{path}.after[{i}]", f'no task "{name}"')
                else:
                    found.append(other)
            if {t.pk for t in found} != set(task.wait_for.values_list("pk", flat=True)):
                task.wait_for.set(found)
        for task, _, path in self.wanted:
            loop = cycle_through(task, list(task.wait_for.all()))
            if loop is not None:
                self.reader.error(f"{path}.after", f"these tasks would wait for each other for ever: {describe_cycle(loop)}")
