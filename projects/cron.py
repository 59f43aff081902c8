"""Fire times of triggers in a project's time zone, with daylight-saving rules.

Cron expressions are evaluated on the project's wall clock by croniter, with
the habits of the classic cron daemon where the clock jumps:

- spring forward (a gap): a time that does not exist that day fires once, at
  the first moment after the jump (02:30 on 2021-03-28 in Amsterdam → 03:00);
- fall back (a repeat): a job pinned to an hour fires once, on the first pass;
  a job whose hour field starts with "*" (every hour, every 2 hours, …) runs
  by elapsed time and so fires on both passes.

Intervals of weeks or days keep the wall-clock time of their anchor (same
rules as above); intervals of hours, minutes and seconds count elapsed time.
Every function returns aware datetimes in the project's zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from croniter import croniter

UTC = dt_timezone.utc
WALL_CLOCK_UNITS = {"weeks": 7, "days": 1}
ELAPSED_UNITS = {"hours": 3600, "minutes": 60, "seconds": 1}


class CronError(ValueError):
    """A cron expression that cannot be used, with the reason."""


@dataclass(frozen=True)
class FireTime:
    """One moment a trigger fires, and a remark when daylight saving moved or doubled it."""

    at: datetime
    trigger: str
    note: str = ""


# The five fields of a cron expression, in order, with the values each takes.
CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 or sun-sat, 0 and 7 both Sunday"),
)


def validate_cron(expression: str) -> str:
    """The expression with single spaces; CronError names the field at fault."""
    expression = " ".join(expression.split())
    fields = expression.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"“{expression}” has {len(fields)} fields; a cron trigger needs five "
            "(minute hour day-of-month month day-of-week)."
        )
    for position, (name, allowed) in enumerate(CRON_FIELDS):
        # Each field alone, the others left open: croniter itself only says the whole is wrong.
        alone = " ".join(value if i == position else "*" for i, value in enumerate(fields))
        if not croniter.is_valid(alone):
            raise CronError(
                f"“{expression}”: the {name} field “{fields[position]}” is not valid; it takes {allowed}, "
                "with lists (1,15), ranges (1-5) and steps (*/10)."
            )
    if not croniter.is_valid(expression):
        raise CronError(f"“{expression}” is not a valid cron expression.")
    return expression


def next_fire_times(expression: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` fire times strictly after `after` (aware), in `after`'s zone."""
    zone = after.tzinfo if isinstance(after.tzinfo, ZoneInfo) else UTC
    return [fire.at for fire in cron_times(expression, zone, after, count)]


# --- wall-clock helpers -----------------------------------------------------------


def is_ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    """True when this wall-clock time happens twice (clocks go back)."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    return first.utcoffset() != second.utcoffset() and _exists(wall, zone)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    round_trip = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return round_trip.replace(tzinfo=None) == wall.replace(tzinfo=None)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the jump that swallowed `wall`.

    The jump lies between reading `wall` with the offset after it and with the
    offset before it; a search to the second finds it whatever the zone's rule.
    """
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    after_offset = (high + timedelta(hours=12)).astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0).astimezone(zone)


def gap_note(what: str, at: datetime) -> str:
    return f"{what} does not exist on {at:%Y-%m-%d} (clocks go forward); fires at {at:%H:%M %Z} instead."


def repeat_note(wall: datetime, at: datetime, both_passes: bool = False) -> str:
    how = "this hourly trigger fires on both passes" if both_passes else f"fires once, on the first pass ({at:%Z})"
    return f"{wall:%H:%M} happens twice on {wall:%Y-%m-%d} (clocks go back); {how}."


def localize(wall: datetime, zone: ZoneInfo) -> tuple[datetime, str]:
    """A naive wall-clock time as an aware one, with a note when daylight saving interferes."""
    if not _exists(wall, zone):
        at = _gap_end(wall, zone)
        return at, gap_note(f"{wall:%H:%M}", at)
    if is_ambiguous(wall, zone):
        at = wall.replace(tzinfo=zone, fold=0)
        return at, repeat_note(wall, at)
    return wall.replace(tzinfo=zone), ""


# --- cron ------------------------------------------------------------------------


def _hour_is_wildcard(expression: str) -> bool:
    return expression.split(" ")[1].startswith("*")


def _offset_changed_before(at: datetime, zone: ZoneInfo) -> bool:
    return (at - timedelta(hours=3)).astimezone(zone).utcoffset() != at.utcoffset()


def _cron_stream(expression: str, zone: ZoneInfo, after: datetime) -> Iterator[FireTime]:
    expression = validate_cron(expression)
    by_elapsed_time = _hour_is_wildcard(expression)
    it = croniter(expression, after.astimezone(zone))
    while True:
        at = it.get_next(datetime).astimezone(zone)
        wall = at.replace(tzinfo=None)
        # croniter.match parses the expression again on every call; only a time
        # right after a clock change can have been moved out of a gap.
        if _offset_changed_before(at, zone) and not croniter.match(expression, wall):
            # croniter moved a time that fell into a gap to the end of the gap.
            yield FireTime(at, "cron", gap_note("The scheduled time", at))
        elif is_ambiguous(wall, zone):
            second_pass = at.utcoffset() == wall.replace(tzinfo=zone, fold=1).utcoffset()
            if by_elapsed_time or not second_pass:
                yield FireTime(at, "cron", repeat_note(wall, at, both_passes=by_elapsed_time))
        else:
            yield FireTime(at, "cron")


def cron_times(expression: str, zone: ZoneInfo, after: datetime, count: int = 5, until: datetime | None = None) -> list[FireTime]:
    """The next `count` fire times of a cron expression strictly after `after`, none after `until`."""
    return _take(_cron_stream(expression, zone, after), after, count, until)


# --- intervals -----------------------------------------------------------------------


def interval_step(every: int, unit: str) -> timedelta:
    if every is None or every < 1:
        raise ValueError(f"An interval must be a positive whole number, not {every!r}.")
    if unit in WALL_CLOCK_UNITS:
        return timedelta(days=every * WALL_CLOCK_UNITS[unit])
    if unit in ELAPSED_UNITS:
        return timedelta(seconds=every * ELAPSED_UNITS[unit])
    raise ValueError(f"Unknown interval unit “{unit}”.")


def _interval_stream(every: int, unit: str, anchor: datetime, zone: ZoneInfo, after: datetime) -> Iterator[FireTime]:
    step = interval_step(every, unit)
    if unit in WALL_CLOCK_UNITS:
        start = anchor.astimezone(zone).replace(tzinfo=None)
        k = max(0, (after.astimezone(zone).replace(tzinfo=None) - start) // step - 1)
        while True:
            at, note = localize(start + k * step, zone)
            yield FireTime(at, "interval", note)
            k += 1
    # Aware arithmetic within one zone is wall-clock arithmetic in Python: count in UTC.
    origin = anchor.astimezone(UTC)
    k = max(0, (after.astimezone(UTC) - origin) // step - 1)
    while True:
        yield FireTime((origin + k * step).astimezone(zone), "interval")
        k += 1


def interval_times(
    every: int, unit: str, anchor: datetime, zone: ZoneInfo, after: datetime, count: int = 5, until: datetime | None = None,
) -> list[FireTime]:
    """Fire times anchor + k·interval (k ≥ 0) strictly after `after`, none after `until`."""
    return _take(_interval_stream(every, unit, anchor, zone, after), after, count, until)


def _take(stream: Iterator[FireTime], after: datetime, count: int, until: datetime | None) -> list[FireTime]:
    # Compared in UTC: two aware times in the same zone compare by wall clock,
    # which would merge the two passes of a repeated hour.
    after, until = after.astimezone(UTC), until.astimezone(UTC) if until is not None else None
    found: list[FireTime] = []
    for fire in stream:
        at = fire.at.astimezone(UTC)
        if len(found) >= count or (until is not None and at > until):
            break
        if at > after and (not found or at != found[-1].at.astimezone(UTC)):
            found.append(fire)
    return found
