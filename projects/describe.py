"""A project's schedule in words, for the pages."""

from __future__ import annotations

import zoneinfo

from cron_descriptor import ExpressionDescriptor, FormatException, Options

from projects.models import Project


def cron_in_words(expression: str) -> str:
    """“At 06:00, Monday through Friday” for “0 6 * * 1-5”; the expression itself if it cannot be read."""
    options = Options()
    options.use_24hour_time_format = True
    options.day_of_week_start_index_zero = True  # crontab: 0 (and 7) is Sunday
    try:
        return ExpressionDescriptor(expression, options).get_description()
    except (FormatException, ValueError, KeyError, IndexError):
        return f"cron “{expression}”"


def _local(project: Project, value) -> str:
    return f"{value.astimezone(zoneinfo.ZoneInfo(project.timezone)):%Y-%m-%d %H:%M}"


def triggers_in_words(project: Project) -> list[str]:
    """One sentence per active trigger, in the project's time zone."""
    zone = project.timezone
    lines = []
    if project.cron:
        lines.append(f"{cron_in_words(project.cron)} ({zone}), cron “{project.cron}”.")
    if project.interval_every and project.interval_unit:
        unit = project.interval_unit if project.interval_every != 1 else project.interval_unit.rstrip("s")
        lines.append(f"Every {project.interval_every} {unit}.")
    if project.once_at:
        fired = " (already fired)" if project.once_fired_for == project.once_at else ""
        lines.append(f"Once, at {_local(project, project.once_at)} ({zone}){fired}.")
    if lines and (project.start_at or project.end_at):
        window = []
        if project.start_at:
            window.append(f"from {_local(project, project.start_at)}")
        if project.end_at:
            window.append(f"until {_local(project, project.end_at)}")
        lines.append(f"Active {' '.join(window)} ({zone}).")
    return lines


def schedule_in_words(project: Project) -> str:
    return " ".join(triggers_in_words(project)) or "No schedule: runs only when started by hand."
