"""Fire-time maths of cron and interval triggers on fixed calendar dates, daylight saving included.

Europe/Amsterdam: clocks go forward 2021-03-28 02:00 → 03:00 and back
2021-10-31 03:00 → 02:00. America/New_York: forward 2021-03-14 02:00 → 03:00,
back 2021-11-07 02:00 → 01:00.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from projects.cron import CronError, cron_times, interval_times, localize, next_fire_times, validate_cron

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")
UTC = timezone.utc


def iso(fires) -> list[str]:
    return [fire.at.isoformat() for fire in fires]


def test_daily_job_keeps_its_wall_clock_time_across_spring_forward_in_amsterdam():
    fires = cron_times("0 6 * * *", AMS, datetime(2021, 3, 27, 12, tzinfo=AMS), 3)
    assert iso(fires) == ["2021-03-28T06:00:00+02:00", "2021-03-29T06:00:00+02:00", "2021-03-30T06:00:00+02:00"]
    assert [f.at.astimezone(UTC).hour for f in fires] == [4, 4, 4]
    assert not any(f.note for f in fires)


def test_time_in_the_amsterdam_gap_fires_once_at_the_end_of_the_gap_with_a_warning():
    fires = cron_times("30 2 * * *", AMS, datetime(2021, 3, 27, 12, tzinfo=AMS), 3)
    assert iso(fires) == ["2021-03-28T03:00:00+02:00", "2021-03-29T02:30:00+02:00", "2021-03-30T02:30:00+02:00"]
    assert "does not exist on 2021-03-28" in fires[0].note and "03:00 CEST" in fires[0].note
    assert fires[1].note == ""


def test_several_times_in_the_gap_collapse_into_one_firing():
    fires = cron_times("*/15 2 * * *", AMS, datetime(2021, 3, 27, 12, tzinfo=AMS), 2)
    assert iso(fires) == ["2021-03-28T03:00:00+02:00", "2021-03-29T02:00:00+02:00"]


def test_pinned_time_in_the_repeated_hour_fires_once_on_the_first_pass_in_amsterdam():
    fires = cron_times("30 2 * * *", AMS, datetime(2021, 10, 30, 12, tzinfo=AMS), 3)
    assert iso(fires) == ["2021-10-31T02:30:00+02:00", "2021-11-01T02:30:00+01:00", "2021-11-02T02:30:00+01:00"]
    assert "happens twice on 2021-10-31" in fires[0].note and "first pass (CEST)" in fires[0].note


def test_after_the_first_pass_the_second_pass_is_not_a_fire_time():
    first_pass = datetime(2021, 10, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert iso(cron_times("30 2 * * *", AMS, first_pass, 1)) == ["2021-11-01T02:30:00+01:00"]


def test_hourly_job_fires_on_both_passes_of_the_repeated_hour_in_new_york():
    fires = cron_times("0 * * * *", NY, datetime(2021, 11, 7, 0, 30, tzinfo=NY), 4)
    assert [f.at.astimezone(UTC).isoformat() for f in fires] == [
        "2021-11-07T05:00:00+00:00", "2021-11-07T06:00:00+00:00", "2021-11-07T07:00:00+00:00", "2021-11-07T08:00:00+00:00",
    ]
    assert "both passes" in fires[0].note and "both passes" in fires[1].note


def test_new_york_spring_forward_and_fall_back_for_a_nightly_job():
    spring = cron_times("30 2 * * *", NY, datetime(2021, 3, 13, 12, tzinfo=NY), 2)
    assert iso(spring) == ["2021-03-14T03:00:00-04:00", "2021-03-15T02:30:00-04:00"]
    fall = cron_times("30 1 * * *", NY, datetime(2021, 11, 6, 12, tzinfo=NY), 3)
    assert iso(fall) == ["2021-11-07T01:30:00-04:00", "2021-11-08T01:30:00-05:00", "2021-11-09T01:30:00-05:00"]
    assert "first pass (EDT)" in fall[0].note


def test_weekdays_names_and_sunday_as_0_or_7():
    after = datetime(2021, 3, 24, 12, tzinfo=AMS)  # a Wednesday
    assert iso(cron_times("0 8 * * mon-fri", AMS, after, 3)) == [
        "2021-03-25T08:00:00+01:00", "2021-03-26T08:00:00+01:00", "2021-03-29T08:00:00+02:00",
    ]
    assert iso(cron_times("0 0 * * 0", AMS, after, 1)) == iso(cron_times("0 0 * * 7", AMS, after, 1)) == ["2021-03-28T00:00:00+01:00"]


def test_fire_times_stop_at_until():
    fires = cron_times("0 6 * * *", AMS, datetime(2021, 3, 27, 12, tzinfo=AMS), 5, until=datetime(2021, 3, 29, 6, tzinfo=AMS))
    assert iso(fires) == ["2021-03-28T06:00:00+02:00", "2021-03-29T06:00:00+02:00"]


def test_next_fire_times_keeps_its_simple_form():
    after = datetime(2021, 3, 27, 12, tzinfo=AMS)
    assert [t.isoformat() for t in next_fire_times("0 6 * * *", after, 2)] == ["2021-03-28T06:00:00+02:00", "2021-03-29T06:00:00+02:00"]


@pytest.mark.parametrize("expression, message", [
    ("0 6 * *", "has 4 fields"),
    ("0 6 * * * *", "has 6 fields"),
    ("61 6 * * *", "the minute field “61” is not valid; it takes 0-59"),
    ("0 6 * * funday", "the day-of-week field “funday” is not valid"),
])
def test_bad_cron_expressions_are_refused_with_the_reason(expression, message):
    with pytest.raises(CronError, match=message):
        validate_cron(expression)


def test_daily_interval_keeps_wall_clock_time_and_moves_out_of_the_gap():
    anchor = datetime(2021, 3, 25, 2, 30, tzinfo=AMS)
    fires = interval_times(1, "days", anchor, AMS, datetime(2021, 3, 26, 12, tzinfo=AMS), 3)
    assert iso(fires) == ["2021-03-27T02:30:00+01:00", "2021-03-28T03:00:00+02:00", "2021-03-29T02:30:00+02:00"]
    assert "does not exist" in fires[1].note


def test_weekly_interval_in_new_york_across_fall_back():
    anchor = datetime(2021, 10, 31, 9, 0, tzinfo=NY)
    fires = interval_times(1, "weeks", anchor, NY, anchor, 2)
    assert iso(fires) == ["2021-11-07T09:00:00-05:00", "2021-11-14T09:00:00-05:00"]


def test_hour_and_minute_intervals_count_elapsed_time_through_the_gap():
    anchor = datetime(2021, 3, 28, 0, 0, tzinfo=AMS)
    fires = interval_times(90, "minutes", anchor, AMS, anchor, 3)
    assert iso(fires) == ["2021-03-28T01:30:00+01:00", "2021-03-28T04:00:00+02:00", "2021-03-28T05:30:00+02:00"]


def test_interval_before_its_anchor_starts_at_the_anchor():
    anchor = datetime(2030, 1, 1, 12, tzinfo=UTC)
    fires = interval_times(2, "hours", anchor, AMS, datetime(2029, 1, 1, tzinfo=UTC), 2)
    assert [f.at.astimezone(UTC) for f in fires] == [anchor, datetime(2030, 1, 1, 14, tzinfo=UTC)]


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="positive whole number"):
        interval_times(0, "hours", datetime(2021, 1, 1, tzinfo=UTC), AMS, datetime(2021, 1, 1, tzinfo=UTC))


def test_localize_gap_and_repeat():
    at, note = localize(datetime(2021, 3, 28, 2, 30), AMS)
    assert at.isoformat() == "2021-03-28T03:00:00+02:00" and "clocks go forward" in note
    at, note = localize(datetime(2021, 10, 31, 2, 30), AMS)
    assert at.isoformat() == "2021-10-31T02:30:00+02:00" and "clocks go back" in note
    at, note = localize(datetime(2021, 7, 1, 2, 30), AMS)
    assert at.isoformat() == "2021-07-01T02:30:00+02:00" and note == ""
