"""Finding a task or project from the names people type: "project/task" or an id."""

from __future__ import annotations

from projects.models import Project
from tasks.models import Task


class NotFound(LookupError):
    """No such task or project; the message says what was looked for."""


def find_task(name: str) -> Task:
    name = name.strip()
    tasks = Task.objects.select_related("project")
    if name.isdigit():
        try:
            return tasks.get(pk=int(name))
        except Task.DoesNotExist:
            raise NotFound(f"No task has id {name}.") from None
    # Project and task names may both contain "/": try every split.
    parts = name.split("/")
    for cut in range(1, len(parts)):
        project, task = "/".join(parts[:cut]), "/".join(parts[cut:])
        match = tasks.filter(project__name=project, name=task).first()
        if match:
            return match
    if len(parts) < 2:
        raise NotFound(f"“{name}” is not of the form “project/task” (or a task id).")
    raise NotFound(f"No task “{name}”: check the project and task names (they are case-sensitive).")


def find_project(name: str) -> Project:
    name = name.strip()
    lookup = {"pk": int(name)} if name.isdigit() else {"name": name}
    try:
        return Project.objects.get(**lookup)
    except Project.DoesNotExist:
        raise NotFound(f"No project “{name}”.") from None
