"""Reads of the scoreboard: Redis first, the database when Redis is absent or down."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.db.models.functions import Now

from leaderboard.ranking import NAMES_KEY, TIE_SCAN_LIMIT, TOP_N, BoardKeys, scripts_for
from scoreboard_project import aio, metrics
from scoreboard_project.redis import RedisError
from scores.models import Score

logger = logging.getLogger(__name__)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Epoch microseconds: the reach times of the ranking indexes."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def moment_of_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with microseconds, as API.md shows it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=65536)
def _iso_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_from_micros(micros: int) -> str:
    """`iso` of epoch microseconds, without a datetime (a board page formats a hundred)."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_iso_second(seconds)}.{fraction:06d}Z"


def board_keys(board: str | None = None) -> BoardKeys:
    return BoardKeys.for_board(board or settings.LEADERBOARD_NAME, settings.REDIS_CHANNEL_PREFIX)


def ranked_scores():
    """Scores of the players who may appear in rankings (active, not banned), in board order."""
    from antifraud.models import Ban

    banned = Ban.objects.filter(user_id=OuterRef("user_id"), lifted_at__isnull=True, ends_at__gt=Now())
    return (
        Score.objects.filter(user__is_active=True)
        .filter(~Exists(banned))
        .order_by("-total_score", "updated_at", "user_id")
    )


def board_entries(rows: list[tuple[int, str, int, str]]) -> list[dict]:
    """Number (user_id, username, score, last_updated) rows, already in board order."""
    entries: list[dict] = []
    for position, (user_id, username, score, last_updated) in enumerate(rows):
        rank = entries[-1]["rank"] if position and score == entries[-1]["score"] else position + 1
        entries.append(
            {
                "rank": rank,
                "user_id": user_id,
                "username": username,
                "score": score,
                "last_updated": last_updated,
            }
        )
    return entries


def board_head(entries: list[dict]) -> dict:
    return {
        "leaderboard": entries,
        "last_updated": max((entry["last_updated"] for entry in entries), default=None),
    }


def leaderboard_top_from_db() -> dict:
    rows = [
        (score.user_id, score.user.username, score.total_score, iso(score.updated_at))
        for score in ranked_scores().select_related("user")[:TOP_N]
    ]
    body = board_head(board_entries(rows))
    body["total_players"] = ranked_scores().count()
    return body


def user_rank_from_db(*, total: int, user_id: int | None = None) -> int:
    """1 + the ranked players above `total`, not counting `user_id` itself."""
    return (
        Score.objects.filter(total_score__gt=total, user__is_active=True).exclude(user_id=user_id).count() + 1
    )


def usernames(user_ids: list[int]) -> dict[int, str]:
    from accounts.models import User

    return dict(User.objects.filter(id__in=user_ids).values_list("id", "username"))


async def leaderboard_top_json(*, board: str | None = None) -> bytes:
    """The body of GET /api/scoreboard: one Redis round trip with a warm cache, no SQL."""
    body, _version = await leaderboard_top_versioned(board=board)
    return body


async def leaderboard_top_versioned(*, board: str | None = None) -> tuple[bytes, int | None]:
    """The board's body and its version (None without Redis: the process keeps its own)."""
    client = aio.async_redis()
    if client is not None:
        try:
            return await _top_json_from_redis(client, board_keys(board))
        except RedisError as error:
            metrics.BOARD_REDIS_ERROR.inc()
            key = (settings.REDIS_URL, board or settings.LEADERBOARD_NAME)
            return await _top_json_fallback(key, error), None
    return json.dumps(await aio.db_call(leaderboard_top_from_db)()).encode(), None


# Redis configured but unreachable: the board from the database, kept briefly per process
# (every GET would otherwise be two queries): (Redis URL, board) -> (monotonic time, body).
_fallback_boards: dict[tuple[str, str], tuple[float, bytes]] = {}


async def _top_json_fallback(key: tuple[str, str], error: Exception) -> bytes:
    found = _fallback_boards.get(key)
    now = time.monotonic()
    if found is not None and now - found[0] < settings.LEADERBOARD_FALLBACK_TTL:
        return found[1]
    logger.warning("redis unreachable (%s); scoreboard read from the database", error)
    body = json.dumps(await aio.db_call(leaderboard_top_from_db)()).encode()
    _fallback_boards[key] = (now, body)
    return body


def leaderboard_top(*, board: str | None = None) -> dict:
    """The scoreboard as a dict, for synchronous callers."""
    return json.loads(aio.run(leaderboard_top_json(board=board)))


async def _top_json_from_redis(client, keys: BoardKeys) -> tuple[bytes, int]:
    # MULTI/EXEC: the body, the count and the version are read at one instant.
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.top10)
        pipe.zcard(keys.index)
        pipe.get(keys.version)
        head, players, version = await pipe.execute()
    if head is None:
        metrics.BOARD_REDIS_MISS.inc()
        head, players, version = await _top_build(client, keys)
    else:
        metrics.BOARD_REDIS_HIT.inc()
    return head[:-1] + b', "total_players": %d}' % players, int(version or 0)


async def _top_build(client, keys: BoardKeys) -> tuple[bytes, int, int]:
    scripts = scripts_for(client)
    members, times, names, players, version = await scripts.top_read(
        keys=[keys.index, keys.reached, keys.version, NAMES_KEY], args=[TOP_N, TIE_SCAN_LIMIT]
    )
    candidates = []
    for position in range(0, len(members), 2):
        name = names[position // 2]
        candidates.append(
            (
                -int(float(members[position + 1])),
                int(times[position // 2] or 0),
                int(members[position]),
                name.decode() if name is not None else None,
            )
        )
    top = sorted(candidates)[:TOP_N]
    missing = [user_id for _, _, user_id, name in top if name is None]
    found = await _names_fill(client, missing) if missing else {}
    rows = [
        (user_id, name if name is not None else found.get(user_id, ""), -negated, iso_from_micros(reached))
        for negated, reached, user_id, name in top
    ]
    head = json.dumps(board_head(board_entries(rows))).encode()
    await scripts.top_store(
        keys=[keys.top10, keys.version], args=[version, head, settings.LEADERBOARD_CACHE_TTL]
    )
    return head, int(players), int(version)


async def _names_fill(client, user_ids: list[int]) -> dict[int, str]:
    found = await aio.db_call(usernames)(user_ids)
    if found:
        await client.hset(NAMES_KEY, mapping={str(key): value for key, value in found.items()})
    return found


async def user_rank(*, total: int, user_id: int | None = None, board: str | None = None) -> int:
    """Competition rank of a total: 1 + the other ranked players strictly above it."""
    client = aio.async_redis()
    if client is not None:
        index = board_keys(board).index
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.zcount(index, f"({total}", "+inf")
                pipe.zscore(index, str(user_id or 0))
                above, own = await pipe.execute()
            return above - (1 if own is not None and own > total else 0) + 1
        except RedisError:
            logger.warning("redis unreachable; rank read from the database")
    return await aio.db_call(user_rank_from_db)(total=total, user_id=user_id)
