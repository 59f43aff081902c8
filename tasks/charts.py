"""Small bar charts drawn as inline SVG by the templates: no JavaScript library needed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from etlsite.tables import duration_text
from etlsite.times import shown, zoned

WIDTH, HEIGHT = 1000, 120  # drawing area of the SVG, in user units (it scales to the page width)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # class of the bar (a run status, or "plan")
    title: str  # tooltip
    label: str = ""  # shown under the bar


@dataclass
class Chart:
    bars: list[Bar] = field(default_factory=list)
    top_label: str = ""
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height + 18}"


def _bars(values: list[float], slot: float) -> list[tuple[float, float, float, float]]:
    top = max(values, default=0) or 1
    gap = min(2.0, slot * 0.2)
    return [
        (i * slot + gap / 2, HEIGHT - max(1.0, v / top * HEIGHT), slot - gap, max(1.0, v / top * HEIGHT)) if v else
        (i * slot + gap / 2, HEIGHT - 1.0, slot - gap, 1.0)
        for i, v in enumerate(values)
    ]


def duration_chart(runs: list[dict], zone: str | None = None) -> Chart:
    """Bars of the durations of `runs` (dicts with id, status, started_at, finished_at), oldest left; times in `zone`."""
    runs = list(reversed(runs))
    seconds = [(r["finished_at"] - r["started_at"]).total_seconds() for r in runs]
    if not runs:
        return Chart()
    slot = WIDTH / max(len(runs), 25)  # a few runs still get slim bars
    chart = Chart(top_label=duration_text(max(seconds)))
    for run, secs, (x, y, w, h) in zip(runs, seconds, _bars(seconds, slot), strict=True):
        title = f"Run {run['id']}: {duration_text(secs)}, {run['status'].replace('_', ' ')}, started {shown(run['started_at'], zone)}"
        chart.bars.append(Bar(x, y, w, h, f"status-{run['status']}", title))
    return chart


def tally(names: list[str]) -> list[str]:
    """["a", "b", "a"] → ["a ×2", "b"]: a task that fires several times in an hour is named once."""
    return [f"{name} ×{count}" if count > 1 else name for name, count in Counter(names).items()]


def hourly_plan_chart(start: datetime, hours: list[list[str]]) -> Chart:
    """Bars of runs per hour from `start`; hours[i] lists the task names planned in hour i."""
    counts = [len(names) for names in hours]
    slot = WIDTH / max(len(hours), 1)
    chart = Chart(top_label=f"{max(counts, default=0)} runs")
    for i, (names, (x, y, w, h)) in enumerate(zip(hours, _bars(counts, slot), strict=True)):
        hour = start + timedelta(hours=i)  # in UTC: the site's zone may skip or repeat an hour
        named = tally(names)
        listed = ", ".join(named[:12]) + (f" and {len(named) - 12} more" if len(named) > 12 else "")
        title = f"{shown(hour, weekday=True)}: {len(names)} run(s)" + (f": {listed}" if names else "")
        label = f"{zoned(hour):%H}" if i % 3 == 0 else ""
        chart.bars.append(Bar(x, y, w, h, "plan" if names else "plan-empty", title, label))
    return chart
