"""The one road that changes a score.

`score_submit` is async: the hot path awaits it on the server's event loop; synchronous
doors (DRF view, admin, commands, Celery) call `score_submit_sync`, which runs the same
coroutine on the process's background loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from leaderboard.ranking import idempotency_key
from leaderboard.selectors import user_rank
from leaderboard.services import leaderboard_record
from scoreboard_project import aio
from scoreboard_project.errors import DuplicateAction
from scoreboard_project.redis import RedisError
from scores.ledger import Credit, ledger_credit_async, ledger_credit_many
from scores.selectors import action_rules_async, history_owner, score_of
from scores.validation import ScoreAction, action_check_bounds

logger = logging.getLogger("scoreboard.scores")

ACCEPTED = 200
# A duplicate that lost the race to an in-flight original waits this long for its answer.
REPLAY_WAITS = (0.0, 0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    status: int
    body: dict
    replayed: bool = False


def _body(*, user_id: int, new_score: int, rank: int) -> dict:
    return {"success": True, "user_id": user_id, "new_score": new_score, "rank": rank}


async def score_submit(*, user_id: int, action: ScoreAction) -> ScoreOutcome:
    """Apply one scored action: check it, credit it exactly once, rank the player."""
    action_check_bounds(
        action,
        rule=(await action_rules_async()).get(action.action_type),
        max_points=settings.MAX_POINTS_PER_ACTION,
    )
    credit = await ledger_credit_async(user_id=user_id, action=action)
    return await _settle(user_id=user_id, action=action, credit=credit)


async def score_submit_many(*, items: list[tuple[int, ScoreAction]]) -> list[ScoreOutcome | Exception]:
    """Apply a trusted batch: each action checked alone, all credited in one statement.

    Returns, in order, each action's outcome or the error that refused it.
    """
    rules = await action_rules_async()
    results: list[ScoreOutcome | Exception | None] = [None] * len(items)
    valid: list[tuple[int, tuple[int, ScoreAction]]] = []
    for position, (user_id, action) in enumerate(items):
        try:
            action_check_bounds(
                action, rule=rules.get(action.action_type), max_points=settings.MAX_POINTS_PER_ACTION
            )
        except Exception as error:
            results[position] = error
        else:
            valid.append((position, (user_id, action)))
    credits = await ledger_credit_many([item for _, item in valid])

    async def settle(position: int, user_id: int, action: ScoreAction, credit: Credit) -> None:
        try:
            results[position] = await _settle(user_id=user_id, action=action, credit=credit)
        except Exception as error:
            results[position] = error

    await asyncio.gather(
        *(
            settle(position, user_id, action, credit)
            for (position, (user_id, action)), credit in zip(valid, credits, strict=True)
        )
    )
    return results  # type: ignore[return-value]


async def _settle(*, user_id: int, action: ScoreAction, credit: Credit) -> ScoreOutcome:
    """After the commit: index the new total, remember the answer, or answer a replay."""
    if credit.total is None:
        return await _replay(user_id=user_id, action=action)
    logger.info(
        "score credited user=%s action_id=%s type=%s points=%s total=%s",
        user_id,
        action.action_id,
        action.action_type,
        action.points,
        credit.total,
    )
    rank = await leaderboard_record(
        user_id=user_id,
        total=credit.total,
        reached_at=credit.reached_at,
        remember=(action.action_id, ACCEPTED),
    )
    if aio.async_redis() is None:
        cache.set(
            idempotency_key(action.action_id), f"{ACCEPTED}:{credit.total}:{rank}", settings.IDEMPOTENCY_TTL
        )
    return ScoreOutcome(ACCEPTED, _body(user_id=user_id, new_score=credit.total, rank=rank))


async def _replay(*, user_id: int, action: ScoreAction) -> ScoreOutcome:
    """Answer a repeated action_id: the original answer, or 409 if it is not the same action."""
    owner = await aio.db_call(history_owner)(action_id=action.action_id)
    if owner is None or owner != (user_id, action.digest()):
        raise DuplicateAction()
    for delay in REPLAY_WAITS:
        await asyncio.sleep(delay)
        remembered = await _remembered(action.action_id)
        if remembered is not None:
            status, new_score, rank = remembered
            return ScoreOutcome(status, _body(user_id=user_id, new_score=new_score, rank=rank), replayed=True)
    # The remembered answer expired or was lost with Redis: answer with the current standing.
    score = await aio.db_call(score_of)(user_id=user_id)
    total = score.total_score if score else 0
    body = _body(user_id=user_id, new_score=total, rank=await user_rank(total=total))
    return ScoreOutcome(ACCEPTED, body, replayed=True)


async def _remembered(action_id: str) -> tuple[int, int, int] | None:
    client = aio.async_redis()
    try:
        value = (
            await client.get(idempotency_key(action_id)) if client else cache.get(idempotency_key(action_id))
        )
    except RedisError:
        return None
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    status, new_score, rank = (int(part) for part in value.split(":"))
    return status, new_score, rank


def score_submit_sync(*, user_id: int, action: ScoreAction) -> ScoreOutcome:
    """`score_submit` for synchronous callers; never inside a transaction, since the
    credit commits on its own connection and could not be rolled back with the caller's."""
    if connection.in_atomic_block:
        raise RuntimeError("score_submit_sync must be called outside a transaction")
    return aio.run(score_submit(user_id=user_id, action=action))
