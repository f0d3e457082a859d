"""Board definitions as the hot path reads them, and where each board-period lives in Redis.

Key layout of a board's period (beside the global board's own index, see leaderboard.ranking):
  board:{code}:{period}:idx  sorted set  member "RRRRRRRRRRRRRRRR:UUUUUUUUUU" (reach time in
                             epoch microseconds, user id, zero-padded) -> the value, negated on
                             boards where higher is better: ascending order is board order,
                             equal values by who reached them first, then by user id
  boards:player:{user_id}    hash        code -> "period|member|stored" of the player's entry in
                             the board's current period (one hash for all of a player's boards:
                             a credit reads and writes it once, whatever the number of boards)
  {prefix}:boards:changed    channel     "code code ..." of the boards whose top 10 changed
Windowed periods expire one full period after they end (the archive keeps their standings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings

from leaderboard.models import GLOBAL_BOARD, Board
from leaderboard.periods import Period, period_at
from scoreboard_project import aio

EVENT_RETENTION = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class BoardDef:
    """A board as the hot path reads it (a copy of its row, refreshed every few seconds)."""

    code: str
    title: str
    action_types: frozenset[str]
    operator: str
    order: str
    window: str
    starts_at: datetime | None
    ends_at: datetime | None
    time_zone: str
    tie_policy: str

    @property
    def is_global(self) -> bool:
        return self.code == GLOBAL_BOARD

    @property
    def sign(self) -> int:
        """Stored score = sign * value: ascending order is the board's order."""
        return -1 if self.order == "desc" else 1

    def counts(self, action_type: str) -> bool:
        return not self.action_types or action_type in self.action_types

    @classmethod
    def of(cls, row: Board) -> BoardDef:
        return cls(
            row.code,
            row.title,
            frozenset(row.action_types or ()),
            row.operator,
            row.order,
            row.window,
            row.starts_at,
            row.ends_at,
            row.time_zone,
            row.tie_policy,
        )

    def as_dict(self, now: datetime | None = None) -> dict:
        from django.utils import timezone

        from leaderboard.selectors import iso

        current = period_at(self, now or timezone.now())
        return {
            "code": self.code,
            "title": self.title,
            "action_types": sorted(self.action_types),
            "operator": self.operator,
            "order": self.order,
            "window": self.window,
            "time_zone": self.time_zone,
            "starts_at": iso(self.starts_at) if self.starts_at else None,
            "ends_at": iso(self.ends_at) if self.ends_at else None,
            "tie_policy": self.tie_policy,
            "period": current.as_dict() if current else None,
        }


GLOBAL = BoardDef(
    GLOBAL_BOARD, "All time", frozenset(), "sum", "desc", "all_time", None, None, "UTC", "shared"
)


def _boards_load() -> dict[str, BoardDef]:
    boards = {row.code: BoardDef.of(row) for row in Board.objects.filter(enabled=True)}
    # The global board exists whatever the table says (its row only carries its title).
    boards.setdefault(GLOBAL_BOARD, GLOBAL)
    return boards


_boards = aio.ProcessCopy(_boards_load, "BOARDS_CACHE_SECONDS")


def boards_enabled() -> dict[str, BoardDef]:
    """Enabled boards by code; re-read at most every BOARDS_CACHE_SECONDS."""
    return _boards.get()


async def boards_enabled_async() -> dict[str, BoardDef]:
    return await _boards.get_async()


def boards_forget() -> None:
    """Drop this process's copy (a board was edited); other processes follow within the TTL."""
    _boards.forget()


@lru_cache(maxsize=4096)
def period_index(code: str, period_key: str) -> str:
    """The key of a board-period's sorted set."""
    return f"board:{code}:{period_key}:idx"


def player_key(user_id: int) -> str:
    return f"boards:player:{user_id}"


def player_entry(value: bytes | str | None, period_key: str) -> tuple[str, int] | None:
    """(member, stored score) of a player's entry held for `period_key`, from the player hash."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    period, text, stored = value.split("|")
    return (text, int(float(stored))) if period == period_key else None


def player_entry_text(period_key: str, text: str, stored: int) -> str:
    return f"{period_key}|{text}|{stored}"


def boards_channel() -> str:
    prefix = settings.REDIS_CHANNEL_PREFIX
    return f"{prefix}:boards:changed" if prefix else "boards:changed"


def member(reached_micros: int, user_id: int) -> str:
    return f"{reached_micros:016d}:{user_id:010d}"


def member_user(value: bytes | str) -> int:
    return int(value[17:])


def member_micros(value: bytes | str) -> int:
    return int(value[:16])


def expire_at(period: Period) -> int:
    """Epoch seconds when a period's keys go (0: never): one full period after its end."""
    if period.ends_at is None:
        return 0
    length = period.ends_at - period.starts_at
    keep = EVENT_RETENTION if length > EVENT_RETENTION else length
    return int((period.ends_at + keep + timedelta(days=1)).timestamp())


@dataclass(frozen=True, slots=True)
class BoardPlan:
    """What a credit of one action type does to the boards, valid for credits reached in
    [since, until): each board-period's index key, and per board its operator ("set" for the
    global board: it takes the ledger's total), sign, index expiry, code and period key."""

    since: datetime | None
    until: datetime | None
    keys: tuple[str, ...]
    ops: tuple[tuple[str, int, int, str, str], ...]

    def holds(self, moment: datetime) -> bool:
        return (self.since is None or self.since <= moment) and (self.until is None or moment < self.until)


# (the board copy, action type) -> its plan: the next credit of that type almost always falls
# in the same periods (computing a period in a time zone costs microseconds a board).
_plans: dict[tuple[int, str | None], tuple[dict, BoardPlan]] = {}


def board_plan(boards: dict[str, BoardDef], *, action_type: str | None, reached_at: datetime) -> BoardPlan:
    """The boards a credited action counts for, each in the period its moment falls in
    (`action_type` None: a total to index, not a credit; only the global board takes it)."""
    key = (id(boards), action_type)
    found = _plans.get(key)
    if found is not None and found[0] is boards and found[1].holds(reached_at):
        return found[1]
    since = until = None
    keys, ops = [], []
    for board in boards.values():
        if not board.is_global and (action_type is None or not board.counts(action_type)):
            continue
        period = period_at(board, reached_at)
        if period is None:  # an event outside its bounds: it may begin later
            if board.starts_at > reached_at and (until is None or board.starts_at < until):
                until = board.starts_at
            continue
        if period.starts_at is not None:
            since = period.starts_at if since is None else max(since, period.starts_at)
            until = period.ends_at if until is None else min(until, period.ends_at)
        keys.append(period_index(board.code, period.key))
        operator = "set" if board.is_global else board.operator
        ops.append((operator, board.sign, expire_at(period), board.code, period.key))
    plan = BoardPlan(since, until, tuple(keys), tuple(ops))
    if len(_plans) > 1000:  # many copies of the boards over time: drop the old ones
        _plans.clear()
    _plans[key] = (boards, plan)
    return plan
