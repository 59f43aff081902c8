"""Template filters for moments on the pages (etlsite/times.py): `{{ run.started_at|when:task.project.timezone }}`."""

from __future__ import annotations

from django import template

from etlsite import times

register = template.Library()


@register.filter
def when(value, zone=None):
    """The moment in `zone` (the site's zone without one), with the zone: 2026-11-29 16:25 CET."""
    return times.when(value, zone or None)


@register.filter
def day_when(value, zone=None):
    """The same with the weekday first, for plans and fire times: Mon 2026-11-30 06:00 CET."""
    return times.when(value, zone or None, weekday=True)


@register.filter
def from_now(value):
    """“in 3 h”, “5 min ago”."""
    return times.relative(value) if value else ""
