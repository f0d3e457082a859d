"""Writes to the ranking index. They run after the score transaction commits."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from leaderboard.board import local_board_invalidate
from leaderboard.board_reads import board_pages_invalidate
from leaderboard.boards import BoardDef, board_plan, boards_channel, boards_enabled_async, member, player_key
from leaderboard.events import board_changed_here, score_changed_here
from leaderboard.ranking import NAMES_KEY, TOP_N, idempotency_key, record_script
from leaderboard.selectors import board_keys, micros, ranked_scores, user_rank_from_db
from scoreboard_project import aio
from scoreboard_project.redis import RedisError, redis_client

logger = logging.getLogger(__name__)

REBUILD_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Record:
    """A committed total to index; `action_id` and `status` are remembered for replays."""

    user_id: int
    total: int
    reached_at: datetime
    action_id: str = ""
    status: int = 0
    points: int = 0
    action_type: str = ""


async def leaderboard_record(*, records: list[Record], board: str | None = None) -> list[int]:
    """Put committed totals into the index and return each player's competition rank.

    One Redis round trip, shared with the credits of the same moment; the database answers
    when Redis is absent or down.
    """
    client = aio.async_redis()
    if client is not None:
        try:
            if board is None:
                together = aio.loop_singleton("record-batches", lambda: aio.Coalescer(_record_batches))
                return await together(records)
            return await _record_in_redis(client, records, board)
        except RedisError as error:
            logger.error("redis unreachable (%s); %d totals indexed later", error, len(records))
            asyncio.get_running_loop().create_task(_record_later(records, board, settings.REDIS_URL))
    rank_of = aio.db_call(user_rank_from_db)
    ranks = [await rank_of(total=record.total, user_id=record.user_id) for record in records]
    if client is not None:
        for record, rank in zip(records, ranks, strict=True):
            if record.status:
                answer_remember_locally(record.action_id, f"{record.status}:{record.total}:{rank}")
    # Without Redis this process is the whole service: tell its board and sockets directly.
    board_changed_here()
    for record, rank in zip(records, ranks, strict=True):
        if record.status:
            score_changed_here(
                user_id=record.user_id, new_score=record.total, rank=rank, points=record.points
            )
    return ranks


RECORD_RETRIES = (0.5, 1, 2, 4, 8, 16, 30)

# Answers for replays that Redis could not store (it was unreachable): kept in this process,
# the most recent LOCAL_ANSWERS_MAX, so a retry reaching the same process gets its original body.
LOCAL_ANSWERS_MAX = 100_000
_local_answers: OrderedDict[str, str] = OrderedDict()


def answer_remember_locally(action_id: str, answer: str) -> None:
    _local_answers[action_id] = answer
    while len(_local_answers) > LOCAL_ANSWERS_MAX:
        _local_answers.popitem(last=False)


def answer_remembered_locally(action_id: str) -> str | None:
    return _local_answers.get(action_id)


async def _record_later(records: list[Record], board: str | None, url: str) -> None:
    """Index committed totals that Redis missed, with backoff (the script is safe to repeat:
    it only raises entries and rewrites the same replay answers)."""
    for delay in RECORD_RETRIES:
        await asyncio.sleep(delay)
        client = aio.async_redis(url)
        try:
            await _record_in_redis(client, records, board)
        except RedisError:
            continue
        logger.info("%d totals indexed after a Redis failure", len(records))
        return
    logger.error("redis still unreachable; %d totals not indexed: run rebuild_leaderboard", len(records))


async def _record_batches(batches: list[list[Record]]) -> list[list[int]]:
    """Several callers' records in one script call; each caller gets its own ranks back."""
    ranks = await _record_in_redis(aio.async_redis(), [record for batch in batches for record in batch], None)
    answers, start = [], 0
    for batch in batches:
        answers.append(ranks[start : start + len(batch)])
        start += len(batch)
    return answers


async def _record_in_redis(client, records: list[Record], board: str | None) -> list[int]:
    keys = board_keys(board)
    args: list = [TOP_N, settings.IDEMPOTENCY_TTL, len(records)]
    for record in records:
        args += [record.user_id, record.total, micros(record.reached_at), record.status or "", record.points]
    script_keys = [
        keys.index,
        keys.reached,
        keys.top10,
        keys.version,
        keys.changed,
        keys.scores,
        boards_channel(),
        *(idempotency_key(record.action_id) for record in records),
    ]
    if board is None:
        _board_ops_add(await boards_enabled_async(), records, script_keys, args)
    ranks, changed, boards_changed = await record_script(client, script_keys, args)
    if changed:
        local_board_invalidate()
    if boards_changed:
        board_pages_invalidate([code.decode() for code in boards_changed])
    return [int(rank) for rank in ranks]


def _board_ops_add(boards: dict[str, BoardDef], records: list[Record], keys: list, args: list) -> None:
    """Append the records' board operations to the record script's keys and arguments: each
    board-period the call touches once, then per record its player hash, member and
    board-periods."""
    numbers: dict[str, int] = {}
    table: list = []
    per_record: list = []
    for record in records:
        plan = board_plan(
            boards, action_type=record.action_type if record.status else None, reached_at=record.reached_at
        )
        mine = []
        for key, op in zip(plan.keys, plan.ops, strict=True):
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = len(numbers) + 1
                keys.append(key)
                table += op
            mine.append(number)
        per_record += (member(micros(record.reached_at), record.user_id), " ".join(map(str, mine)))
    if numbers:
        keys += [player_key(record.user_id) for record in records]
        args.append(len(numbers))
        args += table
        args += per_record


def leaderboard_name_set(*, user_id: int, username: str) -> None:
    client = redis_client()
    if client is None:
        return
    try:
        client.hset(NAMES_KEY, str(user_id), username)
    except RedisError:
        logger.warning("redis unreachable; name of user %s not cached", user_id)


def leaderboard_user_sync(*, user_id: int, board: str | None = None) -> None:
    """Make the index agree with the database for one user (after activation changes)."""
    board_changed_here()
    client = redis_client()
    if client is None:
        return
    keys = board_keys(board)
    score = ranked_scores().filter(user_id=user_id).first()
    try:
        with client.pipeline(transaction=True) as pipe:
            if score is None:
                pipe.zrem(keys.index, user_id)
                pipe.hdel(keys.reached, user_id)
            else:
                pipe.zadd(keys.index, {str(user_id): score.total_score})
                pipe.hset(keys.reached, str(user_id), micros(score.updated_at))
            pipe.incr(keys.version)
            pipe.delete(keys.top10)
            pipe.publish(keys.changed, "sync")
            pipe.execute()
    except RedisError:
        logger.error("redis unreachable; user %s not synced; run rebuild_leaderboard", user_id)
    if board is None:
        from leaderboard.board_services import board_user_sync

        board_user_sync(user_id=user_id)


def leaderboard_rebuild(*, board: str | None = None) -> int:
    """Recreate the index from the database and swap it in atomically; return its size."""
    client = redis_client()
    if client is None:
        return ranked_scores().count()
    keys = board_keys(board)
    suffix = uuid.uuid4().hex
    index_tmp, reached_tmp, names_tmp = (
        f"{key}:rebuild:{suffix}" for key in (keys.index, keys.reached, NAMES_KEY)
    )
    count = 0
    # The database's clock (credits stamp updated_at with it), with a margin for credits
    # whose statement began before the snapshot and commits after it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        (started,) = cursor.fetchone()
    if isinstance(started, str):  # SQLite answers text, in UTC
        started = parse_datetime(started).replace(tzinfo=UTC)
    started -= timedelta(seconds=5)
    rows = ranked_scores().values_list("user_id", "user__username", "total_score", "updated_at")
    batch: list = []
    for row in rows.iterator(chunk_size=REBUILD_CHUNK):
        batch.append(row)
        if len(batch) == REBUILD_CHUNK:
            count += _rebuild_chunk(client, batch, index_tmp, reached_tmp, names_tmp)
            batch = []
    count += _rebuild_chunk(client, batch, index_tmp, reached_tmp, names_tmp)
    with client.pipeline(transaction=True) as pipe:
        for tmp, final in ((index_tmp, keys.index), (reached_tmp, keys.reached)):
            if count:
                pipe.rename(tmp, final)
            else:
                pipe.delete(final)
        if count:
            pipe.rename(names_tmp, NAMES_KEY)
        pipe.incr(keys.version)
        pipe.delete(keys.top10)
        pipe.publish(keys.changed, "rebuild")
        pipe.execute()
    # Credits that committed while the snapshot was read: raise them again (never lower).
    late = list(
        ranked_scores().filter(updated_at__gte=started).values_list("user_id", "total_score", "updated_at")
    )
    if late:
        with client.pipeline(transaction=False) as pipe:
            for user_id, total, at in late:
                pipe.zadd(keys.index, {str(user_id): total}, gt=True)
                pipe.hset(keys.reached, str(user_id), micros(at))
            pipe.incr(keys.version)
            pipe.delete(keys.top10)
            pipe.publish(keys.changed, "rebuild")
            pipe.execute()
    board_changed_here()
    return count


def _rebuild_chunk(client, rows, index_key, reached_key, names_key) -> int:
    if not rows:
        return 0
    with client.pipeline(transaction=False) as pipe:
        pipe.zadd(index_key, {str(user_id): total for user_id, _, total, _ in rows})
        pipe.hset(reached_key, mapping={str(user_id): micros(at) for user_id, _, _, at in rows})
        pipe.hset(names_key, mapping={str(user_id): name for user_id, name, _, _ in rows})
        pipe.execute()
    return len(rows)


# Recovery after a Redis outage (the breaker of REDIS_URL's server closed again): rebuild the
# index from the database once, whichever process gets there first. The lock keeps two
# processes from rebuilding at once; the mark (wall-clock start of the last rebuild's
# snapshot) lets a process skip the rebuild when another one began after its own last failed
# Redis call, since that snapshot already holds every credit this process could not index.
RECOVERY_LOCK_SECONDS = 300
RECOVERY_WAIT_SECONDS = 60
CLOCK_MARGIN_SECONDS = 1.0

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
MARK_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def recovery_keys(board: str | None = None) -> tuple[str, str]:
    base = board_keys(board).index.rsplit(":", 1)[0]
    return f"{base}:rebuild-lock", f"{base}:rebuilt-from"


def leaderboard_recover(*, since: float, board: str | None = None) -> str:
    """Make the index agree with the database after an outage that ended at `since` (wall
    clock of the last failed call): "rebuilt", "skipped" (a rebuild started after it) or
    "gave-up" (another process held the lock too long; rebuild_leaderboard fixes it)."""
    client = redis_client()
    if client is None:
        return "skipped"
    lock_key, mark_key = recovery_keys(board)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + RECOVERY_WAIT_SECONDS
    while True:
        mark = client.get(mark_key)
        if mark is not None and float(mark) >= since:
            logger.info("ranking index already rebuilt after the Redis outage; nothing to do")
            return "skipped"
        if client.set(lock_key, token, nx=True, ex=RECOVERY_LOCK_SECONDS):
            try:
                started = time.time() - CLOCK_MARGIN_SECONDS
                count = leaderboard_rebuild(board=board)
                if board is None:
                    from leaderboard.board_services import boards_rebuild

                    boards_rebuild()
                client.eval(MARK_SCRIPT, 1, mark_key, repr(started))
            finally:
                client.eval(RELEASE_SCRIPT, 1, lock_key, token)
            logger.warning("ranking index rebuilt from the database after a Redis outage (%d players)", count)
            return "rebuilt"
        if time.monotonic() > deadline:
            logger.error("ranking index not rebuilt after the Redis outage: run rebuild_leaderboard")
            return "gave-up"
        time.sleep(0.5)


def _recover_in_thread(since: float) -> None:
    from django.db import connections

    try:
        leaderboard_recover(since=since)
    except Exception:
        logger.exception("ranking index recovery failed: run rebuild_leaderboard")
    finally:
        connections.close_all()


def leaderboard_on_redis_recovered(breaker, since: float) -> None:
    """Breaker hook: Redis answers again; reconcile the index in the background (never on
    the request that probed)."""
    from scoreboard_project.redis import redis_breaker

    if breaker is not redis_breaker():
        return
    threading.Thread(
        target=_recover_in_thread, args=(since,), name="leaderboard-recover", daemon=True
    ).start()
