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
from django.utils import timezone

from antifraud.ratelimits import Admission, admit_score_request, gains_account
from antifraud.rules import ENFORCE, gains_crossed, rule_states_async
from antifraud.services import alerts_after_credit, held_record
from leaderboard.ranking import idempotency_key
from leaderboard.selectors import user_rank
from leaderboard.services import Record, answer_remembered_locally, leaderboard_record
from scoreboard_project import aio, metrics
from scoreboard_project.errors import ApiError, DuplicateAction, InvalidAction, ServerError
from scoreboard_project.hotsettings import hot
from scoreboard_project.logs import info_line, score_log_fields
from scoreboard_project.redis import RedisError
from scores.ledger import Credit, ledger_credit_async, ledger_credit_many
from scores.selectors import action_rules_async, batch_players, history_owner, score_of
from scores.validation import (
    ActionRule,
    ScoreAction,
    action_check_bounds,
    action_check_signature,
    action_check_time,
)

logger = logging.getLogger("scoreboard.scores")

ACCEPTED = 200
HELD = 202
# A duplicate that lost the race to an in-flight original waits this long for its answer.
REPLAY_WAITS = (0.0, 0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    status: int
    body: dict
    replayed: bool = False


def _body(*, user_id: int, new_score: int, rank: int) -> dict:
    return {"success": True, "user_id": user_id, "new_score": new_score, "rank": rank}


def action_check(action: ScoreAction, *, rule: ActionRule | None, user_id: int) -> None:
    """Every rule an action must pass before it is credited (pure: no I/O)."""
    action_check_bounds(action, rule=rule, max_points=hot.MAX_POINTS_PER_ACTION)
    action_check_time(
        action,
        now=timezone.now(),
        max_skew=hot.CLIENT_TIMESTAMP_MAX_SKEW,
        max_age=hot.CLIENT_TIMESTAMP_MAX_AGE,
    )
    action_check_signature(action, rule=rule, user_id=user_id)


async def score_submit_request(
    *, user_id: int, sid: str, action: ScoreAction, session_checked: bool = False
) -> tuple[ScoreOutcome, Admission]:
    """POST /api/scores after the token, for every door: check the action, admit it (address,
    session, bans, rate limits, review state: one Redis round trip), then credit it, or hold
    it when the player is under review; the gains rules judge it after the credit."""
    rule = (await action_rules_async()).get(action.action_type)
    action_check(action, rule=rule, user_id=user_id)
    states = await rule_states_async()
    admission = await admit_score_request(
        user_id=user_id,
        sid=sid,
        action_id=action.action_id,
        points=action.points,
        kind=action.action_type,
        kind_limit=rule.rate_per_window or 0,
        client_ip=action.client_ip,
        session_checked=session_checked,
        states=states,
    )
    if admission.under_review and states["manual_review"].mode == ENFORCE:
        held = await _hold(user_id=user_id, action=action)
        if held is not None:
            return held, admission
    outcome = await score_submit(user_id=user_id, action=action, checked=True)
    if not outcome.replayed:
        await _judge_gains(user_id=user_id, action=action, admission=admission, states=states)
    return outcome, admission


async def _judge_gains(*, user_id: int, action: ScoreAction, admission: Admission, states) -> None:
    """The rules that judge a credited action by the player's gains (velocity, manual
    review), only when it takes the player over a threshold (no thread hop otherwise)."""
    crossed = gains_crossed(
        states,
        velocity_before=admission.velocity_before,
        velocity=admission.velocity,
        gains_before=admission.gains_before,
        gains=admission.gains,
        under_review=admission.under_review,
    )
    if not any(crossed):
        return
    try:
        await aio.db_call(alerts_after_credit)(
            user_id=user_id,
            action_id=action.action_id,
            client_ip=action.client_ip,
            velocity=admission.velocity,
            gains=admission.gains,
            under_review=admission.under_review,
            states=states,
            velocity_before=admission.velocity_before,
            gains_before=admission.gains_before,
        )
    except Exception:  # the credit stands; a rule that failed to record is logged
        logger.exception("anti-fraud rules after the credit of %s failed", action.action_id)


async def _hold(*, user_id: int, action: ScoreAction) -> ScoreOutcome | None:
    """Hold the action of a player under review (202); None if it was credited already."""
    held, created = await aio.db_call(held_record)(user_id=user_id, action=action)
    if held is None:
        return None
    if (held.user_id, held.request_hash) != (user_id, action.digest()):
        raise DuplicateAction()
    score = await aio.db_call(score_of)(user_id=user_id)
    total = score.total_score if score else 0
    body = _body(user_id=user_id, new_score=total, rank=await user_rank(total=total, user_id=user_id))
    return ScoreOutcome(HELD, {**body, "status": "pending_review"}, replayed=not created)


async def score_submit(*, user_id: int, action: ScoreAction, checked: bool = False) -> ScoreOutcome:
    """Apply one scored action: check it (unless the caller did), credit it exactly once,
    rank the player."""
    if not checked:
        action_check(action, rule=(await action_rules_async()).get(action.action_type), user_id=user_id)
    credit = await ledger_credit_async(user_id=user_id, action=action)
    (outcome,) = await _settle([(user_id, action, credit)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def score_submit_many(*, items: list[tuple[int, ScoreAction]]) -> list[ScoreOutcome | Exception]:
    """Apply a trusted batch: each action checked alone, all credited in one statement.

    Returns, in order, each action's outcome or the error that refused it.
    """
    rules = await action_rules_async()
    results: list[ScoreOutcome | Exception | None] = [None] * len(items)
    valid: list[int] = []
    for position, (user_id, action) in enumerate(items):
        try:
            action_check(action, rule=rules.get(action.action_type), user_id=user_id)
        except ApiError as error:
            results[position] = error
        else:
            valid.append(position)
    credits = await ledger_credit_many([items[position] for position in valid])
    settled = await _settle(
        [(*items[position], credit) for position, credit in zip(valid, credits, strict=True)]
    )
    for position, outcome in zip(valid, settled, strict=True):
        results[position] = outcome
    return results  # type: ignore[return-value]


async def score_submit_batch(*, items: list[tuple[int, ScoreAction] | ApiError]) -> dict:
    """Apply a game server's batch (parsed by `batch_parse`) and answer per item.

    Each item's result has the single-action shape plus its `action_id` and `status`;
    a refused item carries the error shape. Unknown or inactive players are refused.
    """
    wanted = {item[0] for item in items if isinstance(item, tuple)}
    active, reviewed = await aio.db_call(batch_players)(user_ids=wanted) if wanted else (set(), set())
    checked: list[tuple[int, ScoreAction] | ApiError] = [
        item
        if not isinstance(item, tuple) or item[0] in active
        else InvalidAction(
            "user_id: unknown, inactive or suspended player",
            details={"user_id": "unknown, inactive or suspended player"},
        )
        for item in items
    ]
    results: list = list(checked)
    held = await _hold_reviewed(checked, results, reviewed)
    valid = [
        position for position, item in enumerate(checked) if isinstance(item, tuple) and position not in held
    ]
    outcomes = await score_submit_many(items=[checked[position] for position in valid])
    for position, outcome in zip(valid, outcomes, strict=True):
        results[position] = outcome
    await _judge_batch_gains(
        [
            checked[position]
            for position, outcome in zip(valid, outcomes, strict=True)
            if isinstance(outcome, ScoreOutcome) and outcome.status == ACCEPTED and not outcome.replayed
        ]
    )
    answers = []
    for item, result in zip(items, results, strict=True):
        action_id = item[1].action_id if isinstance(item, tuple) else None
        if isinstance(result, ScoreOutcome):
            # `status` is the item's HTTP status here; a held item says so in `pending_review`.
            answer = {"action_id": action_id, **result.body, "status": result.status}
            if result.status == HELD:
                answer["pending_review"] = True
            if result.replayed:
                answer["replayed"] = True
        else:
            error = result if isinstance(result, ApiError) else ServerError()
            if not isinstance(result, ApiError):
                logger.error("batch item failed: %r", result)
            answer = {"action_id": action_id, "status": error.status, **error.body()}
        answers.append(answer)
    metrics.batch_observed(answers)
    return {"success": True, "results": answers}


async def _judge_batch_gains(credited: list[tuple[int, ScoreAction]]) -> None:
    """A batch's credited actions count towards their players' velocity and gains, and are
    judged by those rules like the players' own submissions."""
    if not credited:
        return
    states = await rule_states_async()
    admissions = await gains_account(
        [(user_id, action.action_id, action.points) for user_id, action in credited], states=states
    )
    for (user_id, action), admission in zip(credited, admissions, strict=True):
        await _judge_gains(user_id=user_id, action=action, admission=admission, states=states)


async def _hold_reviewed(checked: list, results: list, reviewed: set[int]) -> set[int]:
    """A batch's actions of players under review are held like their own submissions
    (`manual_review` enforced); returns the positions answered here."""
    answered: set[int] = set()
    if not reviewed or (await rule_states_async())["manual_review"].mode != ENFORCE:
        return answered
    rules = await action_rules_async()
    for position, item in enumerate(checked):
        if not isinstance(item, tuple) or item[0] not in reviewed:
            continue
        user_id, action = item
        try:
            action_check(action, rule=rules.get(action.action_type), user_id=user_id)
            outcome = await _hold(user_id=user_id, action=action)
        except ApiError as error:
            results[position] = error
            answered.add(position)
            continue
        if outcome is not None:  # None: credited already, answered as a replay by the batch
            results[position] = outcome
            answered.add(position)
    return answered


async def _settle(credits: list[tuple[int, ScoreAction, Credit]]) -> list[ScoreOutcome | Exception]:
    """After the commit: index the new totals in one round trip, remember the answers, and
    answer the actions that were already credited as replays (or 409s)."""
    outcomes: list[ScoreOutcome | Exception | None] = [None] * len(credits)
    fresh = [position for position, (_, _, credit) in enumerate(credits) if credit.total is not None]
    records = []
    for position in fresh:
        user_id, action, credit = credits[position]
        info_line(
            logger,
            "score credited user=%s action_id=%s type=%s points=%s total=%s",
            (user_id, action.action_id, action.action_type, action.points, credit.total),
            score_log_fields(user_id, action, credit, "accepted"),
        )
        records.append(
            Record(
                user_id,
                credit.total,
                credit.reached_at,
                action.action_id,
                ACCEPTED,
                action.points,
                action.action_type,
            )
        )
    ranks = await leaderboard_record(records=records) if records else []
    remember_locally = aio.async_redis() is None
    for position, record, rank in zip(fresh, records, ranks, strict=True):
        if remember_locally:
            cache.set(
                idempotency_key(record.action_id),
                f"{ACCEPTED}:{record.total}:{rank}",
                settings.IDEMPOTENCY_TTL,
            )
        outcomes[position] = ScoreOutcome(
            ACCEPTED, _body(user_id=record.user_id, new_score=record.total, rank=rank)
        )
    repeats = [position for position, outcome in enumerate(outcomes) if outcome is None]
    if repeats:  # rare: no gather (and its future) for every credit
        answers = await asyncio.gather(
            *(_replay(user_id=credits[position][0], action=credits[position][1]) for position in repeats),
            return_exceptions=True,
        )
        for position, answer in zip(repeats, answers, strict=True):
            outcomes[position] = answer
    return outcomes  # type: ignore[return-value]


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
    body = _body(user_id=user_id, new_score=total, rank=await user_rank(total=total, user_id=user_id))
    return ScoreOutcome(ACCEPTED, body, replayed=True)


async def _remembered(action_id: str) -> tuple[int, int, int] | None:
    client = aio.async_redis()
    try:
        value = (
            await client.get(idempotency_key(action_id)) if client else cache.get(idempotency_key(action_id))
        )
    except RedisError:
        value = answer_remembered_locally(action_id)  # stored here while Redis was unreachable
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


def score_revert(*, user_id: int, action_ids: list[str], by=None, reason: str = "") -> int:
    """Void credited actions confirmed as fraud and take their points off the total, then
    correct the board. Returns the points taken off (0 if they were voided already).

    The total is decreased by the voided points in the same transaction as the voiding, with
    the score row locked first, so a credit committing meanwhile is neither lost nor undone.
    """
    from django.db import transaction
    from django.db.models import Sum
    from django.db.models.functions import Now

    from antifraud.services import audit_record
    from leaderboard.services import leaderboard_user_sync
    from scores.models import Score, ScoreHistory

    with transaction.atomic():
        score = Score.objects.select_for_update().filter(user_id=user_id).first()
        if score is None:
            return 0
        rows = ScoreHistory.objects.filter(user_id=user_id, action_id__in=action_ids, voided_at__isnull=True)
        voided_ids = list(rows.values_list("id", flat=True))
        points = ScoreHistory.objects.filter(id__in=voided_ids).aggregate(total=Sum("points"))["total"] or 0
        if not voided_ids:
            return 0
        ScoreHistory.objects.filter(id__in=voided_ids).update(voided_at=timezone.now(), voided_by=by)
        before = score.total_score
        # The database's clock, like the credits' reach times: the index compares them.
        Score.objects.filter(pk=score.pk).update(total_score=before - points, updated_at=Now())
        audit_record(
            actor=by,
            action="score.revert",
            target=f"user:{user_id}",
            before={"total_score": before},
            after={"total_score": before - points, "voided_actions": len(voided_ids), "reason": reason},
        )
        transaction.on_commit(lambda: leaderboard_user_sync(user_id=user_id))
    logger.warning("score reverted: user=%s points=%s actions=%s by=%s", user_id, points, len(voided_ids), by)
    return points
