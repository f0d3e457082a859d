"""The one road that changes a score."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from leaderboard.ranking import idempotency_key
from leaderboard.selectors import user_rank, user_rank_from_db
from leaderboard.services import leaderboard_record
from scoreboard_project.errors import DuplicateAction
from scoreboard_project.redis import RedisError, redis_client
from scores.ledger import ledger_credit
from scores.selectors import action_rules, history_owner, score_of
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


def score_submit(*, user_id: int, action: ScoreAction) -> ScoreOutcome:
    """Apply one scored action: check it, credit it exactly once, rank the player."""
    action_check_bounds(
        action,
        rule=action_rules().get(action.action_type),
        max_points=settings.MAX_POINTS_PER_ACTION,
    )
    credit = ledger_credit(user_id=user_id, action=action)
    if credit.total is None:
        return _replay(user_id=user_id, action=action)
    total = credit.total
    logger.info(
        "score credited user=%s action_id=%s type=%s points=%s total=%s",
        user_id,
        action.action_id,
        action.action_type,
        action.points,
        total,
    )
    ranked: list[int] = []

    def publish() -> None:
        rank = leaderboard_record(
            user_id=user_id,
            total=total,
            reached_at=credit.reached_at,
            remember=(action.action_id, ACCEPTED),
        )
        ranked.append(rank)
        if redis_client() is None:
            cache.set(
                idempotency_key(action.action_id), f"{ACCEPTED}:{total}:{rank}", settings.IDEMPOTENCY_TTL
            )

    # Runs at once when no outer transaction is open; otherwise after it commits, and the
    # rank is read from this transaction's view of the database.
    transaction.on_commit(publish, robust=True)
    rank = ranked[0] if ranked else user_rank_from_db(total=total)
    return ScoreOutcome(ACCEPTED, _body(user_id=user_id, new_score=total, rank=rank))


def _replay(*, user_id: int, action: ScoreAction) -> ScoreOutcome:
    """Answer a repeated action_id: the original answer, or 409 if it is not the same action."""
    owner = history_owner(action_id=action.action_id)
    if owner is None or owner != (user_id, action.digest()):
        raise DuplicateAction()
    for delay in REPLAY_WAITS:
        time.sleep(delay)
        remembered = _remembered(action.action_id)
        if remembered is not None:
            status, new_score, rank = remembered
            return ScoreOutcome(status, _body(user_id=user_id, new_score=new_score, rank=rank), replayed=True)
    # The remembered answer expired or was lost with Redis: answer with the current standing.
    score = score_of(user_id=user_id)
    total = score.total_score if score else 0
    body = _body(user_id=user_id, new_score=total, rank=user_rank(total=total))
    return ScoreOutcome(ACCEPTED, body, replayed=True)


def _remembered(action_id: str) -> tuple[int, int, int] | None:
    client = redis_client()
    try:
        value = client.get(idempotency_key(action_id)) if client else cache.get(idempotency_key(action_id))
    except RedisError:
        return None
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    status, new_score, rank = (int(part) for part in value.split(":"))
    return status, new_score, rank
