"""Date patterns and date arithmetic (SPEC 6.1) on fixed clocks in real zones.

Every expected value was worked out by hand from a calendar: 2026-01-01 is a
Thursday; 2026-03-31 is a Tuesday, day 090 of the year; Europe/Amsterdam
springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST, 01:00 UTC) and falls
back on 2026-10-25 (03:00 CEST -> 02:00 CET, 01:00 UTC); America/New_York
springs forward on 2026-03-08 (02:00 EST -> 03:00 EDT, 07:00 UTC) and falls
back on 2026-11-01 (02:00 EDT -> 01:00 EST, 06:00 UTC).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from projects.parameters import ParameterError, expand_dates

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")


def ams(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=AMS, fold=fold)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)


# Tuesday 2026-03-31 10:00 in Amsterdam: a month end after a short February.
TUE = ams(2026, 3, 31, 10, 0)

PLAIN = [
    ("%Y%m%d", "20260331"),
    ("%Y-%m-%d", "2026-03-31"),  # "-" before "%" is a literal dash
    ("%Y-%m-%d_%H%M", "2026-03-31_1000"),
    ("%H:%M:%S", "10:00:00"),
    ("%y", "26"),
    ("%b %B", "Mar March"),
    ("%a %A", "Tue Tuesday"),
    ("%w", "2"),
    ("%j", "090"),
    ("%W %U", "13 13"),
    ("%I%p", "10AM"),
    ("%f", "000000"),
    ("report.csv", "report.csv"),
    ("", ""),
]

SHIFTS = [
    ("%Y%m%d-1", "20260330"),
    ("%Y%m%d+1", "20260401"),
    ("%Y-%m-%d-1", "2026-03-30"),
    ("%d-01", "30"),  # leading zero in the offset
    ("%Y-1%m%d", "20250331"),
    ("%Y-12", "2014"),
    ("%y-1", "25"),
    ("%m+1", "04"),
    ("%Y-%m+1-%d", "2026-04-30"),  # 31 April does not exist: clamp
    ("%Y-%m-1-%d", "2026-02-28"),  # Feb 2026 has 28 days
    ("%Y-%m-13-%d", "2025-02-28"),
    ("%b-1 %B", "Feb February"),
    ("%a-1", "Mon"),
    ("%A+5", "Sunday"),  # 2026-04-05
    ("%w-2", "0"),  # Sunday 2026-03-29
    ("%j-89", "001"),
    ("%j-90", "365"),  # 2025-12-31
    ("%W-1", "12"),  # Tuesday 2026-03-24
    ("%H-6", "04"),
    ("%d%H+15", "0101"),  # 2026-04-01 01:00
    ("%M+30", "30"),
    ("%H:%M+90", "11:30"),
    ("%H:%M:%S-1", "09:59:59"),
    ("%f+250", "000250"),
    ("%S%f-1", "59999999"),  # 09:59:59.999999
    ("%d-1 %a-1", "29 Sun"),  # shifts in one group add up: two days back
]

GROUPS = [
    ("%Y%m%d-1_%Y%m%d", "20260330_20260331"),
    ("%Y%m%d-7_%Y%m%d-1.csv", "20260324_20260330.csv"),
    ("%d-2_%d-1_%d", "29_30_31"),
    ("%Y%m%d-1_%H%M", "20260330_1000"),  # %H is new in the group: no split
    ("%m-1_%d", "02_28"),  # %d is in the first group, so it is shifted too
    ("%m-1_%m%d", "02_0331"),
]

WORDS = [
    ("%Y-%m-1-lastday", "2026-02-28"),
    ("%m-1-lastday", "02-28"),
    ("%Y%m-1firstday0", "20260201"),
    ("%Y%m-1firstday", "2026021"),
    ("%Y-%m-lastday", "2026-03-31"),
    ("%Y%m%d-31lastday", "2026022828"),  # lastday of the shifted date (Feb 28)
    ("lastday", "31"),
    ("firstday/firstday0", "1/01"),
    ("from_%Y%m-1firstday0_to_%Y%m-1lastday", "from_20260201_to_20260228"),
    ("%Y%m+1lastday", "20260430"),
]

LITERALS = [
    ("%%", "%"),
    ("%%Y", "%Y"),
    ("%%d-1", "%d-1"),
    ("100%%_%Y", "100%_2026"),
    ("%%%Y", "%2026"),
    ("50%", "50%"),  # a lone % at the end stays
    ("%Z %q", "%Z %q"),  # not a listed directive: unchanged
    ("%d+0-1", "31-1"),  # a zero shift lets digits follow a directive
    ("%p-1", "AM-1"),  # %p has no unit, so "-1" is text
    ("%d1", "311"),  # no sign: no offset
    ("%Y- 1", "2026- 1"),
]


@pytest.mark.parametrize(("pattern", "expected"), PLAIN + SHIFTS + GROUPS + WORDS + LITERALS)
def test_tuesday_month_end(pattern: str, expected: str) -> None:
    assert expand_dates(pattern, TUE) == expected


CALENDAR_EDGES = [
    # Clamping from January 31st.
    (ams(2026, 1, 31, 9), "%Y-%m+1-%d", "2026-02-28"),
    (ams(2026, 1, 31, 9), "%Y-%m+1-lastday", "2026-02-28"),
    (ams(2026, 1, 31, 9), "%Y-%m-1-%d", "2025-12-31"),
    (ams(2026, 1, 31, 9), "%Y%m%d+1", "20260201"),
    (ams(2024, 1, 31, 9), "%Y-%m+1-%d", "2024-02-29"),
    # Year end, both ways.
    (ams(2026, 12, 31, 23, 30), "%Y%m%d+1", "20270101"),
    (ams(2026, 12, 31, 23, 30), "%Y-%m+1", "2027-01"),
    (ams(2026, 12, 31, 23, 30), "%Y%m%d%H+1", "2027010100"),
    (ams(2026, 12, 31, 23, 30), "%j %W %U", "365 52 52"),
    (ams(2026, 1, 1, 0, 15), "%Y%m%d-1", "20251231"),
    (ams(2026, 1, 1, 0, 15), "%Y-%m-1-lastday", "2025-12-31"),
    (ams(2026, 1, 1, 0, 15), "%Y%m-1firstday0", "20251201"),
    (ams(2026, 1, 1, 0, 15), "%Y%m%d%H-1", "2025123123"),
    (ams(2026, 1, 1, 0, 15), "%W", "00"),
    (ams(2026, 1, 1, 0, 15), "%Y%W-1", "202551"),  # Thursday 2025-12-25
    # Leap day.
    (ams(2024, 2, 29, 12), "%Y+1-%m-%d", "2025-02-28"),
    (ams(2024, 2, 29, 12), "%Y-1-%m-%d", "2023-02-28"),
    (ams(2024, 2, 29, 12), "%Y+4-%m-%d", "2028-02-29"),
    (ams(2024, 2, 29, 12), "%Y-%m+12-%d", "2025-02-28"),
    (ams(2024, 2, 29, 12), "%Y-%m-1-%d", "2024-01-29"),
    (ams(2024, 2, 29, 12), "%Y-%m+1-%d", "2024-03-29"),
    (ams(2024, 2, 29, 12), "%Y%m%d+1", "20240301"),
    (ams(2024, 2, 29, 12), "%Y-%m-lastday", "2024-02-29"),
    (ams(2024, 2, 29, 12), "%Y+1-%m-lastday", "2025-02-28"),
    # Years and months move together: +11 months, clamped once.
    (ams(2024, 2, 29, 12), "%Y+1-%m-1-%d", "2025-01-29"),
    (ams(2024, 2, 29, 12), "%j", "060"),
    (ams(2024, 3, 31, 8), "%Y-%m-1-%d", "2024-02-29"),
    (ams(2024, 3, 31, 8), "%Y-%m-1-lastday", "2024-02-29"),
    (ams(2024, 3, 1, 8), "%Y%m%d-1", "20240229"),
    (ams(2025, 3, 1, 8), "%Y%m%d-1", "20250228"),
    # 12-hour clock.
    (ams(2026, 5, 4, 0, 30), "%I:%M %p", "12:30 AM"),
    (ams(2026, 5, 4, 12, 0), "%I %p", "12 PM"),
    (ams(2026, 5, 4, 15, 0), "%I%p", "03PM"),
    (ams(2026, 5, 4, 15, 0), "%I-4%p", "11AM"),
]


@pytest.mark.parametrize(("at", "pattern", "expected"), CALENDAR_EDGES)
def test_calendar_edges(at: datetime, pattern: str, expected: str) -> None:
    assert expand_dates(pattern, at) == expected


# Days move the wall clock (yesterday at the same time); hours and smaller are
# elapsed time, so across a DST change the clock reading jumps with them.
DAYLIGHT_SAVING = [
    # Amsterdam, spring forward 2026-03-29.
    (ams(2026, 3, 29, 1, 30), "%H+1", "03"),
    (ams(2026, 3, 29, 1, 30), "%H:%M+60", "03:30"),
    (ams(2026, 3, 29, 0, 0), "%H+6", "07"),
    (ams(2026, 3, 29, 3, 30), "%H-1", "01"),
    (ams(2026, 3, 29, 3, 30), "%H:%M-30", "03:00"),
    (ams(2026, 3, 29, 3, 30), "%H:%M-31", "01:59"),
    (ams(2026, 3, 28, 12, 0), "%d+1 %H", "29 12"),
    (ams(2026, 3, 28, 12, 0), "%d %H+24", "29 13"),
    # Yesterday's 02:30 did not exist: it moves forward by the gap.
    (ams(2026, 3, 30, 2, 30), "%Y-%m-%d-1 %H:%M", "2026-03-29 03:30"),
    # Amsterdam, fall back 2026-10-25 (02:00-03:00 happens twice).
    (ams(2026, 10, 25, 2, 30), "%H:%M+60", "02:30"),
    (ams(2026, 10, 25, 1, 30), "%H+1", "02"),
    (ams(2026, 10, 25, 1, 30), "%H+2", "02"),
    (ams(2026, 10, 25, 1, 30), "%H+3", "03"),
    (ams(2026, 10, 25, 2, 30, fold=1), "%H", "02"),
    (ams(2026, 10, 25, 2, 30, fold=1), "%H-1", "02"),
    # 61 minutes before the second 02:30 is the first 02:29 (00:29 UTC).
    (ams(2026, 10, 25, 2, 30, fold=1), "%H:%M-61", "02:29"),
    (ams(2026, 10, 25, 2, 30, fold=1), "%H:%M-91", "01:59"),
    (ams(2026, 10, 24, 12, 0), "%d+1 %H", "25 12"),
    (ams(2026, 10, 24, 12, 0), "%d %H+24", "25 11"),
    # A repeated wall time reached by a day shift is its first occurrence.
    (ams(2026, 10, 26, 2, 30), "%d-1 %H:%M", "25 02:30"),
    (ams(2026, 10, 26, 2, 30), "%d-1 %H:%M+60", "25 02:30"),
    # New York, spring forward 2026-03-08.
    (ny(2026, 3, 8, 1, 30), "%H+1", "03"),
    (ny(2026, 3, 8, 1, 30), "%I:%M+60 %p", "03:30 AM"),
    (ny(2026, 3, 7, 23, 0), "%d %H+4", "08 04"),
    (ny(2026, 3, 7, 23, 0), "%d+1 %H", "08 23"),
    (ny(2026, 3, 9, 2, 15), "%Y-%m-%d-1 %H:%M", "2026-03-08 03:15"),
    # New York, fall back 2026-11-01 (01:00-02:00 happens twice).
    (ny(2026, 11, 1, 0, 30), "%H+1", "01"),
    (ny(2026, 11, 1, 0, 30), "%H+2", "01"),
    (ny(2026, 11, 1, 0, 30), "%H+3", "02"),
    (ny(2026, 11, 1, 1, 30, fold=1), "%H-1", "01"),
    (ny(2026, 11, 1, 1, 30, fold=1), "%H:%M-90", "01:00"),
    (ny(2026, 11, 2, 1, 30), "%d-1 %H:%M+60", "01 01:30"),
    (ny(2026, 10, 31, 12, 0), "%d %H+24", "01 11"),
    (ny(2026, 10, 31, 12, 0), "%d+1 %H", "01 12"),
]


@pytest.mark.parametrize(("at", "pattern", "expected"), DAYLIGHT_SAVING)
def test_daylight_saving(at: datetime, pattern: str, expected: str) -> None:
    assert expand_dates(pattern, at) == expected


def test_naive_time_is_a_plain_wall_clock() -> None:
    # No zone, no DST: 01:30 plus an hour is 02:30 even on Amsterdam's change day.
    assert expand_dates("%H:%M+60", datetime(2026, 3, 29, 1, 30)) == "02:30"


def test_names_are_english_whatever_the_locale() -> None:
    assert expand_dates("%a %b", ams(2026, 12, 25, 9)) == "Fri Dec"


@pytest.mark.parametrize("pattern", ["%Y+99999", "%m+120000", "%d-9999999"])
def test_shift_out_of_range_names_the_shift(pattern: str) -> None:
    with pytest.raises(ParameterError, match="out of range") as error:
        expand_dates(pattern, TUE)
    assert pattern in str(error.value)
