"""A board's periods are keys computed from a moment: resets need no job (issue 13)."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from leaderboard.periods import period_at, period_before, period_parse


def board(window, zone="UTC", starts_at=None, ends_at=None):
    return SimpleNamespace(window=window, time_zone=zone, starts_at=starts_at, ends_at=ends_at)


def test_a_daily_board_resets_at_midnight_in_its_own_zone_not_utcs():
    tokyo = board("daily", "Asia/Tokyo")
    # 23:59 and 00:01 in Tokyo are 14:59 and 15:01 UTC of the same UTC day.
    before = datetime(2026, 12, 4, 14, 59, tzinfo=UTC)
    after = datetime(2026, 12, 4, 15, 1, tzinfo=UTC)
    assert period_at(tokyo, before).key == "2026-12-04"
    assert period_at(tokyo, after).key == "2026-12-05"
    assert period_at(tokyo, after).starts_at == datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    assert period_before(tokyo, period_at(tokyo, after)) == period_at(tokyo, before)
    # The same moments on a UTC board are one day.
    assert period_at(board("daily"), before).key == period_at(board("daily"), after).key == "2026-12-04"


def test_a_day_across_a_daylight_saving_change_has_its_true_length():
    paris = board("daily", "Europe/Paris")
    period = period_parse(paris, "2026-03-29")  # clocks go forward: a 23-hour day
    assert period.ends_at - period.starts_at == timedelta(hours=23)
    assert period.starts_at == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


def test_a_week_crossing_the_new_year_is_one_iso_week():
    weekly = board("weekly", "America/New_York")
    new_york = ZoneInfo("America/New_York")
    thursday = datetime(2026, 12, 31, 23, 30, tzinfo=new_york)
    friday = datetime(2027, 1, 1, 0, 30, tzinfo=new_york)
    sunday_night = datetime(2027, 1, 3, 23, 59, tzinfo=new_york)
    monday = datetime(2027, 1, 4, 0, 0, tzinfo=new_york)
    assert period_at(weekly, thursday).key == period_at(weekly, friday).key == "2026-W53"
    assert period_at(weekly, sunday_night).key == "2026-W53"
    assert period_at(weekly, monday).key == "2027-W01"
    assert period_at(weekly, monday).starts_at == monday.astimezone(UTC)
    assert period_before(weekly, period_at(weekly, monday)).key == "2026-W53"
    assert period_parse(weekly, "2026-W53") == period_at(weekly, friday)


def test_months_roll_over_the_year_and_keys_round_trip():
    monthly = board("monthly", "Australia/Sydney")
    january = period_at(monthly, datetime(2026, 12, 31, 14, 0, tzinfo=UTC))  # 01:00 on 1 Jan there
    assert january.key == "2027-01"
    assert period_before(monthly, january).key == "2026-12"
    assert period_parse(monthly, "2026-12").ends_at == january.starts_at


def test_event_boards_count_only_inside_their_bounds():
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    event = board("event", starts_at=start, ends_at=end)
    assert period_at(event, start).key == "event"
    assert period_at(event, end - timedelta(microseconds=1)).key == "event"
    assert period_at(event, end) is None
    assert period_at(event, start - timedelta(microseconds=1)) is None
    assert period_before(event, period_at(event, start)) is None


def test_keys_that_name_no_period_are_refused():
    assert period_parse(board("daily"), "2026-02-30") is None
    assert period_parse(board("weekly"), "2026-W54") is None
    assert period_parse(board("monthly"), "2026-13") is None
    assert period_parse(board("daily"), "2026-W01") is None
    assert period_parse(board("all_time"), "all").key == "all"
    assert period_parse(board("all_time"), "2026-12") is None
