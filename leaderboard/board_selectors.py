"""Reads of any board: a page from the top or after a cursor, around a player, one player.

Redis answers from the board-period's sorted set in one script call. Without Redis, or when
it is down, the standings are folded from the ledger (and kept briefly per process). A closed
period is read from its archived standings.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from leaderboard import board as local_board
from leaderboard.boards import BoardDef, member, member_micros, member_user, period_index, player_key
from leaderboard.periods import Period, period_at, period_before, period_parse
from leaderboard.ranking import NAMES_KEY
from leaderboard.selectors import iso_from_micros, micros, ranked_scores, usernames
from scoreboard_project import aio
from scoreboard_project.errors import InvalidAction, NotFound
from scoreboard_project.redis import LuaScript, RedisError
from scores.selectors import ranked_users

logger = logging.getLogger(__name__)

MAX_LIMIT = 100
MAX_RADIUS = 50
# A closed period is archived (and read from the archive) once it has been over this long:
# a credit whose statement began before the boundary has committed by then.
ARCHIVE_GRACE = timedelta(seconds=60)
MEMBER = re.compile(r"^\d{16}:\d{10}$")


@dataclass(frozen=True, slots=True)
class Standing:
    """One player on a board-period: the stored score (sign * value) and member give its order."""

    user_id: int
    value: int
    reached_micros: int

    def key(self, sign: int) -> tuple[int, str]:
        return sign * self.value, member(self.reached_micros, self.user_id)


# Read a slice of a board-period in board order, with what ranks need.
# KEYS: index, the player's hash (mode "around"; else the index again), names.
# ARGV: mode, a, b, count, board code, period key.
#   mode "top": from position a (0-based); "cursor": after the entry (score a, member b),
#   present or not; "around": player a, with count entries above and below.
# Returns {start, members and scores, usernames, per entry the number of entries strictly
# better, the set's size} or {-1, size} when the player of "around" is not on the board.
READ_SCRIPT = """
local index, at, names = KEYS[1], KEYS[2], KEYS[3]
local mode, count = ARGV[1], tonumber(ARGV[4])
local first, last
if mode == 'top' then
  first = tonumber(ARGV[2])
  last = first + count - 1
elseif mode == 'cursor' then
  local added = redis.call('ZADD', index, 'NX', ARGV[2], ARGV[3])
  first = redis.call('ZRANK', index, ARGV[3])
  if added == 1 then redis.call('ZREM', index, ARGV[3]) else first = first + 1 end
  last = first + count - 1
else
  local held = redis.call('HGET', at, ARGV[5])
  local period, own = false, false
  if held then period, own = string.match(held, '^([^|]*)|([^|]*)|') end
  local position = own and period == ARGV[6] and redis.call('ZRANK', index, own)
  if not position then return {-1, redis.call('ZCARD', index)} end
  first = math.max(0, position - count)
  last = position + count
end
local members = redis.call('ZRANGE', index, first, last, 'WITHSCORES')
local ids, better, seen = {}, {}, {}
for i = 1, #members, 2 do
  ids[#ids + 1] = tostring(tonumber(string.sub(members[i], 18)))
  local score = members[i + 1]
  if seen[score] == nil then seen[score] = redis.call('ZCOUNT', index, '-inf', '(' .. score) end
  better[#better + 1] = seen[score]
end
local found = {}
if #ids > 0 then found = redis.call('HMGET', names, unpack(ids)) end
return {first, members, found, better, redis.call('ZCARD', index)}
"""
read_script = LuaScript(READ_SCRIPT)


# ---- periods and cursors -------------------------------------------------------------------


def period_resolve(board: BoardDef, wanted: str | None, now: datetime | None = None) -> Period:
    """The period a read asks for: current (default), previous, or one by its key."""
    now = now or timezone.now()
    current = period_at(board, now)
    if wanted in (None, "", "current"):
        if current is None:  # an event not yet begun, or over: its one period
            return period_parse(board, "event")
        return current
    if wanted == "previous":
        found = period_before(board, current) if current is not None else None
        if found is None:
            raise NotFound(f"Board {board.code!r} has no previous period.")
        return found
    found = period_parse(board, wanted)
    if found is None:
        raise InvalidAction(
            f"period: {wanted!r} is not a period of board {board.code!r}",
            details={"period": "current, previous, or a key such as " + _example_key(board, now)},
        )
    if found.starts_at is not None and found.starts_at > now:
        raise NotFound(f"Period {wanted!r} of board {board.code!r} has not begun.")
    return found


def _example_key(board: BoardDef, now: datetime) -> str:
    current = period_at(board, now) or period_parse(board, "event")
    return repr(current.key)


def cursor_encode(period: Period, score: int, member_text: str) -> str:
    raw = f"{period.key}|{score}|{member_text}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str, period: Period) -> tuple[int, str]:
    """(stored score, member) after which the page starts; InvalidAction if it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key, score, member_text = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
        value = int(score)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidAction("cursor: not a cursor of this API", details={"cursor": "malformed"}) from None
    if not MEMBER.match(member_text) or abs(value) >= 2**53:
        raise InvalidAction("cursor: not a cursor of this API", details={"cursor": "malformed"})
    if key != period.key:
        raise InvalidAction(
            "cursor: it belongs to another period", details={"cursor": f"from period {key!r}"}
        )
    return value, member_text


# ---- answers ---------------------------------------------------------------------------------


def _entry(standing: Standing, rank: int, name: str) -> dict:
    return {
        "rank": rank,
        "user_id": standing.user_id,
        "username": name,
        "score": standing.value,
        "last_updated": iso_from_micros(standing.reached_micros),
    }


def _rank(board: BoardDef, position: int, better: int) -> int:
    return position + 1 if board.tie_policy == "first_reached" else better + 1


@dataclass(slots=True)
class Slice:
    """Entries of a board-period in order, from position `first`, with their ranks."""

    first: int
    standings: list[Standing]
    better: list[int]
    names: dict[int, str]
    players: int

    def entries(self, board: BoardDef) -> list[dict]:
        return [
            _entry(
                standing,
                _rank(board, self.first + offset, better),
                self.names.get(standing.user_id, ""),
            )
            for offset, (standing, better) in enumerate(zip(self.standings, self.better, strict=True))
        ]


async def board_page(*, board: BoardDef, period: Period, limit: int, cursor: str | None) -> dict:
    """GET /api/boards/{code}: `limit` entries from the top or after `cursor`."""
    if cursor:
        after = cursor_decode(cursor, period)
        part = await _read(board, period, "cursor", after[0], after[1], limit)
    else:
        part = await _read(board, period, "top", 0, "", limit)
    entries = part.entries(board)
    next_cursor = None
    if part.standings and part.first + len(part.standings) < part.players and len(part.standings) == limit:
        last = part.standings[-1]
        next_cursor = cursor_encode(period, *last.key(board.sign))
    return {
        "board": board.code,
        "period": period.as_dict(),
        "leaderboard": entries,
        "total_players": part.players,
        "next_cursor": next_cursor,
    }


async def board_around(*, board: BoardDef, period: Period, user_id: int, radius: int) -> dict:
    """GET /api/boards/{code}/around-me: the player and `radius` entries above and below."""
    part = await _read(board, period, "around", user_id, "", radius)
    entries = part.entries(board) if part.first >= 0 else []
    player = next((entry for entry in entries if entry["user_id"] == user_id), None)
    return {
        "board": board.code,
        "period": period.as_dict(),
        "player": player,
        "leaderboard": entries,
        "total_players": part.players,
    }


async def board_player(*, board: BoardDef, period: Period, user_id: int) -> dict:
    """GET /api/boards/{code}/players/{id}; NotFound when the player is not on it."""
    found = await board_around(board=board, period=period, user_id=user_id, radius=0)
    if found["player"] is None:
        raise NotFound(f"Player {user_id} is not on board {board.code!r} in period {period.key!r}.")
    return {
        "board": board.code,
        "period": found["period"],
        "player": found["player"],
        "total_players": found["total_players"],
    }


async def _read(board: BoardDef, period: Period, mode: str, a, b, count: int) -> Slice:
    now = timezone.now()
    if period.ends_at is not None and period.ends_at + ARCHIVE_GRACE <= now:
        from leaderboard.board_services import board_archive

        standings = await aio.db_call(board_archive)(board=board, period=period)
        return await _slice_of(board, standings, mode, a, b, count)
    client = aio.async_redis()
    # Player hashes name entries of the current period only: a player's place in a closed
    # period (in its first minute, before the archive) is found in the ledger.
    closed = period.ends_at is not None and period.ends_at <= now
    if client is not None and not (closed and mode == "around"):
        try:
            return await _read_redis(client, board, period, mode, a, b, count)
        except RedisError as error:
            logger.warning("redis unreachable (%s); board %s read from the database", error, board.code)
    return await _slice_of(board, await _standings_cached(board, period), mode, a, b, count)


async def _read_redis(client, board: BoardDef, period: Period, mode: str, a, b, count: int) -> Slice:
    index = period_index(board.code, period.key)
    holder = player_key(int(a)) if mode == "around" else index
    found = await read_script(client, [index, holder, NAMES_KEY], [mode, a, b, count, board.code, period.key])
    if found[0] == -1:
        return Slice(-1, [], [], {}, int(found[1]))
    first, members, names, better, players = found
    standings, known = [], {}
    for position in range(0, len(members), 2):
        text = members[position]
        user_id = member_user(text)
        standings.append(
            Standing(user_id, board.sign * int(float(members[position + 1])), member_micros(text))
        )
        name = names[position // 2]
        if name is not None:
            known[user_id] = name.decode()
    missing = [standing.user_id for standing in standings if standing.user_id not in known]
    if missing:
        found_names = await aio.db_call(usernames)(missing)
        known.update(found_names)
        if found_names:
            await client.hset(NAMES_KEY, mapping={str(key): value for key, value in found_names.items()})
    return Slice(int(first), standings, [int(value) for value in better], known, int(players))


async def _slice_of(board: BoardDef, standings: list[Standing], mode: str, a, b, count: int) -> Slice:
    """The same slice as the script's, from a list already in board order."""
    keys = [standing.key(board.sign) for standing in standings]
    if mode == "top":
        first = int(a)
    elif mode == "cursor":
        first = bisect.bisect_right(keys, (int(a), b))
    else:
        position = next(
            (index for index, standing in enumerate(standings) if standing.user_id == int(a)), None
        )
        if position is None:
            return Slice(-1, [], [], {}, len(standings))
        first = max(0, position - count)
        count = position + count - first + 1
    part = standings[first : first + count]
    better = [bisect.bisect_left(keys, (board.sign * standing.value, "")) for standing in part]
    names = await aio.db_call(usernames)([standing.user_id for standing in part]) if part else {}
    return Slice(first, part, better, names, len(standings))


# ---- the standings from the database -----------------------------------------------------


def ledger_rows(board: BoardDef, period: Period, *, user_ids=None):
    """(user_id, points, created_at) of the credited, unvoided actions that count for the
    board in the period, live and archived, in the order they were credited."""
    from scores.models import ScoreHistory, ScoreHistoryArchive

    queries = []
    for model in (ScoreHistory, ScoreHistoryArchive):
        rows = model.objects.filter(voided_at__isnull=True)
        if period.starts_at is not None:
            rows = rows.filter(created_at__gte=period.starts_at, created_at__lt=period.ends_at)
        if board.action_types:
            rows = rows.filter(action_type__in=sorted(board.action_types))
        rows = rows.filter(user_id__in=user_ids if user_ids is not None else ranked_users().values("pk"))
        queries.append(
            rows.order_by("created_at", "id")
            .values_list("user_id", "points", "created_at")
            .iterator(chunk_size=5000)
        )
    return heapq.merge(*queries, key=lambda row: row[2])


def board_fold(board: BoardDef, rows) -> dict[int, tuple[int, datetime]]:
    """Each player's value and the moment it was reached, by the board's operator."""
    folded: dict[int, tuple[int, datetime]] = {}
    sign = board.sign
    for user_id, points, created_at in rows:
        held = folded.get(user_id)
        if board.operator == "sum":
            folded[user_id] = ((held[0] if held else 0) + points, created_at)
        elif board.operator == "best":
            if held is None or sign * points < sign * held[0]:
                folded[user_id] = (points, created_at)
        else:
            folded[user_id] = (points, created_at)
    return folded


def board_standings(board: BoardDef, period: Period) -> list[Standing]:
    """Every ranked player of a board-period, in board order, from the database."""
    if board.is_global:
        rows = ranked_scores().values_list("user_id", "total_score", "updated_at")
        standings = [
            Standing(user_id, total, micros(at)) for user_id, total, at in rows.iterator(chunk_size=5000)
        ]
    else:
        folded = board_fold(board, ledger_rows(board, period))
        standings = [Standing(user_id, value, micros(at)) for user_id, (value, at) in folded.items()]
    standings.sort(key=lambda standing: standing.key(board.sign))
    return standings


# (board definition, period key) -> (monotonic time, generation, standings): a board read
# from the database is kept briefly, and dropped when this process hears the boards changed
# (or the board's definition changed: it is part of the key).
_cached: dict[tuple[BoardDef, str], tuple[float, int, list[Standing]]] = {}


async def _standings_cached(board: BoardDef, period: Period) -> list[Standing]:
    key = (board, period.key)
    found = _cached.get(key)
    now = time.monotonic()
    generation = local_board.generation()
    if found is not None and now - found[0] < settings.LEADERBOARD_FALLBACK_TTL and found[1] == generation:
        return found[2]
    standings = await aio.db_call(board_standings)(board, period)
    _cached[key] = (now, generation, standings)
    return standings
