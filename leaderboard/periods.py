"""A board's periods: the window it resets on, as a key computed from a moment.

A reset is no job: the moment an action is credited names its period (a day, an ISO week, a
month in the board's time zone, or the event), and each period is its own ranking index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

ALL_TIME_KEY = "all"
EVENT_KEY = "event"
DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    starts_at: datetime | None
    ends_at: datetime | None

    def as_dict(self) -> dict:
        from leaderboard.selectors import iso

        return {
            "key": self.key,
            "starts_at": iso(self.starts_at) if self.starts_at else None,
            "ends_at": iso(self.ends_at) if self.ends_at else None,
        }


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _day(day: date, zone: ZoneInfo) -> Period:
    return Period(day.isoformat(), _midnight(day, zone), _midnight(day + timedelta(days=1), zone))


def _week(year: int, week: int, zone: ZoneInfo) -> Period:
    monday = date.fromisocalendar(year, week, 1)
    return Period(f"{year}-W{week:02d}", _midnight(monday, zone), _midnight(monday + timedelta(days=7), zone))


def _month(year: int, month: int, zone: ZoneInfo) -> Period:
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(f"{year}-{month:02d}", _midnight(date(year, month, 1), zone), _midnight(following, zone))


def period_at(board, moment: datetime) -> Period | None:
    """The period of `board` that `moment` falls in; None outside an event's bounds."""
    window = board.window
    if window == "all_time":
        return Period(ALL_TIME_KEY, None, None)
    if window == "event":
        if board.starts_at <= moment < board.ends_at:
            return Period(EVENT_KEY, board.starts_at, board.ends_at)
        return None
    zone = ZoneInfo(board.time_zone)
    local = moment.astimezone(zone)
    if window == "daily":
        return _day(local.date(), zone)
    if window == "weekly":
        year, week, _ = local.isocalendar()
        return _week(year, week, zone)
    return _month(local.year, local.month, zone)


def period_before(board, period: Period) -> Period | None:
    """The period that ended when `period` began; None for all-time and event boards."""
    if period.starts_at is None or board.window == "event":
        return None
    return period_at(board, period.starts_at - timedelta(microseconds=1))


def period_parse(board, key: str) -> Period | None:
    """The period named `key` on this board, or None if the board has no such period."""
    window = board.window
    try:
        if window == "all_time":
            return Period(ALL_TIME_KEY, None, None) if key == ALL_TIME_KEY else None
        if window == "event":
            return Period(EVENT_KEY, board.starts_at, board.ends_at) if key == EVENT_KEY else None
        zone = ZoneInfo(board.time_zone)
        if window == "daily" and (found := DAY.match(key)):
            return _day(date(*(int(part) for part in found.groups())), zone)
        if window == "weekly" and (found := WEEK.match(key)):
            return _week(int(found[1]), int(found[2]), zone)
        if window == "monthly" and (found := MONTH.match(key)):
            return _month(int(found[1]), int(found[2]), zone)
    except ValueError:  # 2026-02-30, week 54, month 13
        return None
    return None
