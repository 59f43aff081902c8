"""How the pages write a moment: one format, always with its zone, and a short relative hint.

A task's times are shown in its project's zone ("2026-11-29 16:25 CET"); site-wide
lists without a project use the site's TIME_ZONE. The admin writes its dates in
the same format (etlsite/formats/en/formats.py) in the site's zone.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

FORMAT = "%Y-%m-%d %H:%M %Z"
WITH_WEEKDAY = "%a " + FORMAT
Zone = str | tzinfo | None


def zoned(value: datetime, zone: Zone = None) -> datetime:
    """`value` in `zone` (an IANA name or a tzinfo), or in the site's current zone."""
    if isinstance(zone, str):
        zone = ZoneInfo(zone)
    return timezone.localtime(value, zone)


def shown(value: datetime | None, zone: Zone = None, *, weekday: bool = False) -> str:
    """“2026-11-29 16:25 CET” (“Sun 2026-11-29 16:25 CET” with `weekday`); “—” for no time."""
    if value is None:
        return "—"
    return zoned(value, zone).strftime(WITH_WEEKDAY if weekday else FORMAT)


def relative(value: datetime, now: datetime | None = None) -> str:
    """“in 3 h”, “in 25 min”, “2 d ago”: the largest whole unit, enough to see how soon or how long ago."""
    seconds = (value - (now or timezone.now())).total_seconds()
    span = abs(seconds)
    if span < 60:
        return "now" if span < 1 else ("in under a minute" if seconds > 0 else "under a minute ago")
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size * (2 if unit == "d" else 1):
            amount = f"{int(span // size)} {unit}"
            return f"in {amount}" if seconds > 0 else f"{amount} ago"
    raise AssertionError("unreachable: a minute or more always has a unit")


def when(value: datetime | None, zone: Zone = None, *, weekday: bool = False, hint: bool = False) -> SafeString:
    """A <time> element with the moment in `zone`; with `hint`, the relative time after it."""
    if value is None:
        return format_html("{}", "—")
    element = format_html('<time datetime="{}">{}</time>', value.isoformat(), shown(value, zone, weekday=weekday))
    if hint:
        return format_html('{} <span class="quiet">{}</span>', element, relative(value))
    return element


def paused_note(paused: bool) -> SafeString:
    """Said next to a planned time while the scheduler is paused: it will not happen unless resumed."""
    if not paused:
        return mark_safe("")
    return format_html('<span class="pill paused" title="{}">scheduler paused</span>',
                       "The scheduler is paused: nothing fires until it is resumed.")


