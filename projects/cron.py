"""Cron expressions: validation and fire times in a project's time zone."""

from __future__ import annotations

from datetime import datetime

from croniter import croniter


class CronError(ValueError):
    """A cron expression that cannot be used, with the reason."""


def validate_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    fields = expression.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"“{expression}” has {len(fields)} fields; a cron trigger needs five "
            "(minute hour day-of-month month day-of-week)."
        )
    if not croniter.is_valid(expression):
        raise CronError(f"“{expression}” is not a valid cron expression.")
    return expression


def next_fire_times(expression: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` fire times strictly after `after` (aware, in its zone)."""
    it = croniter(validate_cron(expression), after)
    return [it.get_next(datetime) for _ in range(count)]
