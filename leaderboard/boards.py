"""Board definitions as the hot path reads them, and where each board-period lives in Redis.

Key layout of a board's period (beside the global board's own index, see leaderboard.ranking):
  board:{code}:{period}:idx  sorted set  member "RRRRRRRRRRRRRRRR:UUUUUUUUUU" (reach time in
                             epoch microseconds, user id, zero-padded) -> the value, negated on
                             boards where higher is better: ascending order is board order,
                             equal values by who reached them first, then by user id
  board:{code}:{period}:at   hash        user_id -> that player's member in idx
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


@dataclass(frozen=True, slots=True)
class PeriodKeys:
    index: str
    at: str


@lru_cache(maxsize=4096)
def period_keys(code: str, period_key: str) -> PeriodKeys:
    base = f"board:{code}:{period_key}"
    return PeriodKeys(f"{base}:idx", f"{base}:at")


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
class BoardOp:
    """One credit's change to one board-period, applied by the record script."""

    board: BoardDef
    period: Period
    operator: str  # "set" (the global board: the ledger's total), "sum", "best", "latest"
    value: int
    expires: int  # expire_at(period)


# The period each board's last credit fell in, with its keys' expiry: the next credit is
# almost always in the same one (computing a period in a time zone costs microseconds).
_last_period: dict[BoardDef, tuple[Period, int]] = {}


def period_expiring(board: BoardDef, moment: datetime) -> tuple[Period, int] | None:
    """`period_at` and `expire_at` of it, remembered per board."""
    known = _last_period.get(board)
    if known is not None:
        period = known[0]
        if period.starts_at is None or period.starts_at <= moment < period.ends_at:
            return known
    period = period_at(board, moment)
    if period is None:
        return None
    if len(_last_period) > 1000:  # boards redefined many times: forget the old definitions
        _last_period.clear()
    known = _last_period[board] = (period, expire_at(period))
    return known


def board_ops(
    boards: dict[str, BoardDef], *, action_type: str | None, points: int, total: int, reached_at: datetime
) -> list[BoardOp]:
    """The boards a credited action counts for, each in the period its moment falls in
    (`action_type` None: a total to index, not a credit; only the global board takes it)."""
    ops = []
    for board in boards.values():
        if board.is_global:
            period, expires = period_expiring(board, reached_at)
            ops.append(BoardOp(board, period, "set", total, expires))
        elif action_type is not None and board.counts(action_type):
            found = period_expiring(board, reached_at)
            if found is not None:
                ops.append(BoardOp(board, found[0], board.operator, points, found[1]))
    return ops
