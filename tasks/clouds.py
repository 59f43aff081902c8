"""Name clouds: how many of the listed objects each owner or project has, as clickable filters.

A cloud counts the list as filtered by everything *except* its own filter, so
its entries keep showing the other choices with counts that honour the other
active filters. Each cloud is one GROUP BY query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import django_filters
from django.db.models import Count, QuerySet
from django.http import QueryDict

SIZES = 5  # CSS classes cloud-1 … cloud-5
MAX_ENTRIES = 80  # the largest entries are shown; the selected one always is


@dataclass(frozen=True)
class CloudEntry:
    label: str
    count: int
    size: int
    selected: bool
    url: str  # query string that selects this entry (or clears it when selected)


@dataclass(frozen=True)
class Cloud:
    title: str
    param: str
    entries: list[CloudEntry]
    clear_url: str | None  # query string without this cloud's filter, when one is set


def _query_string(params: QueryDict, param: str, value: str | None) -> str:
    """The current query with `param` set to `value` (or removed), back on page one."""
    query = params.copy()
    for key in (param, "page"):
        query.pop(key, None)
    if value is not None:
        query[param] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def _size(count: int, low: int, high: int) -> int:
    """1…SIZES on a log scale, so one huge entry does not flatten all the others."""
    if high <= low:
        return SIZES // 2 + 1
    share = (math.log(count) - math.log(low)) / (math.log(high) - math.log(low))
    return 1 + round(share * (SIZES - 1))


def name_cloud(
    title: str,
    filterset_class: type[django_filters.FilterSet],
    params: QueryDict,
    queryset: QuerySet,
    *,
    param: str,
    key: str,
    label: str,
    request=None,
) -> Cloud:
    """Count `queryset`, filtered by `params` minus `param`, grouped by `key` (shown as `label`)."""
    others = params.copy()
    others.pop(param, None)
    counted = filterset_class(others, queryset=queryset, request=request).qs
    rows = list(counted.order_by().values(key, label).annotate(n=Count("pk")))
    selected = params.get(param, "")
    rows.sort(key=lambda r: -r["n"])
    shown = rows[:MAX_ENTRIES] + [r for r in rows[MAX_ENTRIES:] if str(r[key]) == selected]
    counts = [r["n"] for r in shown] or [1]
    low, high = min(counts), max(counts)
    entries = []
    for row in sorted(shown, key=lambda r: str(r[label]).lower()):
        is_selected = str(row[key]) == selected
        entries.append(CloudEntry(
            label=str(row[label]),
            count=row["n"],
            size=_size(row["n"], low, high),
            selected=is_selected,
            url=_query_string(params, param, None if is_selected else str(row[key])),
        ))
    return Cloud(title, param, entries, _query_string(params, param, None) if selected else None)
