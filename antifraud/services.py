"""The anti-fraud services: bans, decisions, flags, reviews, held actions, moderation.

Every change a moderator makes goes through here and is written to the audit log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from antifraud.models import AuditEntry, Ban, Decision, Flag, HeldAction, Review
from antifraud.ratelimits import local_limits
from antifraud.rules import ENFORCE, OFF, RuleState, gains_crossed
from antifraud.selectors import review_open_for
from scoreboard_project import metrics
from scoreboard_project.redis import RedisError, redis_client

logger = logging.getLogger("scoreboard.antifraud")
SUSPENDED = 4403


def ban_key(user_id: int) -> str:
    return f"ban:{user_id}"


def ban_record_automatic(
    *, user_id: int, level: int, seconds: float, action_id: str = "", client_ip: str | None = None
) -> Ban:
    """Record the ban the admission script just placed (Redis holds it already)."""
    from django.conf import settings

    with transaction.atomic():
        ban = Ban.objects.create(
            user_id=user_id,
            reason=f"repeated rate-limit violations (step {level} of the penalty ladder)",
            source=Ban.AUTOMATIC,
            level=level,
            ends_at=timezone.now() + timedelta(seconds=seconds),
        )
        decision_record(
            rule="penalties",
            mode=ENFORCE,
            outcome=Decision.BANNED,
            user_id=user_id,
            action_id=action_id,
            client_ip=client_ip,
            threshold=settings.PENALTY_VIOLATIONS,
            observed=settings.PENALTY_VIOLATIONS,
            evidence={"level": level, "seconds": seconds, "period_seconds": settings.PENALTY_PERIOD},
        )
        audit_record(action="ban.automatic", target=f"user:{user_id}", after=_ban_state(ban))
    logger.warning("ban: user=%s level=%s seconds=%s (automatic)", user_id, level, seconds)
    transaction.on_commit(lambda: _hide(user_id))
    return ban


def ban_create(*, user_id: int, seconds: int, reason: str, by=None) -> Ban:
    """A moderator suspends a player for `seconds`."""
    ban = Ban.objects.create(
        user_id=user_id,
        reason=reason,
        source=Ban.MODERATOR,
        ends_at=timezone.now() + timedelta(seconds=seconds),
        created_by=by,
    )
    audit_record(actor=by, action="ban.create", target=f"user:{user_id}", after=_ban_state(ban))
    logger.warning("ban: user=%s seconds=%s by=%s", user_id, seconds, getattr(by, "pk", None))

    def enforce() -> None:
        client = redis_client()
        if client is not None:
            try:
                client.set(ban_key(user_id), "moderator", ex=max(1, seconds))
            except RedisError:
                logger.error("redis unreachable; ban of user %s held by the database only", user_id)
        local_limits.ban(user_id, seconds)
        _hide(user_id)

    transaction.on_commit(enforce)
    return ban


def ban_lift(*, ban: Ban, by=None) -> None:
    """A moderator ends a ban early; the player returns to the rankings at once."""
    before = _ban_state(ban)
    Ban.objects.filter(pk=ban.pk, lifted_at__isnull=True).update(lifted_at=timezone.now(), lifted_by=by)
    ban.refresh_from_db()
    audit_record(
        actor=by, action="ban.lift", target=f"user:{ban.user_id}", before=before, after=_ban_state(ban)
    )
    user_id = ban.user_id

    def release() -> None:
        if not Ban.objects.filter(
            user_id=user_id, lifted_at__isnull=True, ends_at__gt=timezone.now()
        ).exists():
            client = redis_client()
            if client is not None:
                try:
                    client.delete(ban_key(user_id))
                except RedisError:
                    logger.error("redis unreachable; ban of user %s ends with its TTL", user_id)
            local_limits.lift(user_id)
        _show(user_id)

    transaction.on_commit(release)


def bans_restore() -> int:
    """Put players whose bans ended back into the rankings; safe to run any time."""
    ended = Ban.objects.filter(restored_at__isnull=True).filter(
        Q(lifted_at__isnull=False) | Q(ends_at__lte=timezone.now())
    )
    count = 0
    for ban in ended:
        _show(ban.user_id)
        Ban.objects.filter(pk=ban.pk).update(restored_at=timezone.now())
        count += 1
    return count


def bans_sync() -> int:
    """Re-mark every ban in force in Redis, for the time it has left (after Redis lost its
    data: the admission script refuses banned players by these keys). Returns the count."""
    client = redis_client()
    if client is None:
        return 0
    now = timezone.now()
    in_force = Ban.objects.filter(lifted_at__isnull=True, ends_at__gt=now).values_list("user_id", "ends_at")
    try:
        with client.pipeline(transaction=False) as pipe:
            for user_id, ends_at in in_force:
                left = int((ends_at - now).total_seconds() * 1000)
                if left > 0:
                    # NX: a key the admission script set (with its ladder level) stays as it is.
                    pipe.set(ban_key(user_id), "restored", px=left, nx=True)
            pipe.execute()
    except RedisError:
        logger.error("redis unreachable; bans re-marked by the next bans_restore")
        return 0
    return len(in_force)


def antifraud_on_redis_recovered(breaker, since: float) -> None:
    """Breaker hook: Redis answers again; put back what it may have lost (bans, reviews)."""
    import threading

    from django.db import connections

    def restore() -> None:
        try:
            bans_sync()
            reviews_sync()
        except Exception:
            logger.exception("restoring bans and reviews in Redis failed; celery beat retries")
        finally:
            connections.close_all()

    threading.Thread(target=restore, name="antifraud-recover", daemon=True).start()


def ban_in_force(*, user_id: int) -> Ban | None:
    return Ban.objects.filter(user_id=user_id, lifted_at__isnull=True, ends_at__gt=timezone.now()).first()


def _hide(user_id: int) -> None:
    """Out of the rankings, and the player's live sockets closed (4403)."""
    from leaderboard.events import sessions_ended
    from leaderboard.services import leaderboard_user_sync

    leaderboard_user_sync(user_id=user_id)
    sessions_ended(user_id=user_id, sids=None, code=SUSPENDED)


def _show(user_id: int) -> None:
    from leaderboard.services import leaderboard_user_sync

    leaderboard_user_sync(user_id=user_id)


def _ban_state(ban: Ban) -> dict:
    return {
        "ban_id": ban.pk,
        "source": ban.source,
        "level": ban.level,
        "ends_at": ban.ends_at.isoformat(),
        "lifted_at": ban.lifted_at.isoformat() if ban.lifted_at else None,
        "reason": ban.reason,
    }


# --- audit log -----------------------------------------------------------------------------


def audit_record(*, action: str, target: str, actor=None, before=None, after=None) -> AuditEntry:
    """Append one line to the audit log (moderator actions and security events)."""
    name = getattr(actor, "username", "") or "system"
    logger.info("audit: %s %s %s", name, action, target)
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=name,
        action=action,
        target=target,
        before=before,
        after=after,
    )


# --- decisions and flags -------------------------------------------------------------------


def decision_record(
    *,
    rule: str,
    mode: str,
    outcome: str,
    user_id: int | None = None,
    action_id: str = "",
    client_ip: str | None = None,
    threshold: float | None = None,
    observed: float | None = None,
    evidence: dict | None = None,
    flag: Flag | None = None,
) -> Decision:
    """Keep what a rule did (or, in shadow mode, would have done) to one action, and why."""
    decision = Decision.objects.create(
        rule=rule,
        mode=mode,
        outcome=outcome,
        user_id=user_id,
        action_id=action_id or "",
        client_ip=client_ip,
        threshold=threshold,
        observed=observed,
        evidence=evidence or {},
        flag=flag,
    )
    logger.warning(
        "antifraud decision: rule=%s mode=%s outcome=%s user=%s action_id=%s observed=%s threshold=%s",
        rule,
        mode,
        outcome,
        user_id,
        action_id,
        observed,
        threshold,
    )
    return decision


def flag_raise(
    *,
    rule: str,
    mode: str,
    fingerprint: str,
    threshold: float,
    observed: float,
    summary: str,
    evidence: dict,
    user_id: int | None = None,
    client_ip: str | None = None,
    severity: str = Flag.MEDIUM,
) -> tuple[Flag, bool]:
    """Raise a finding once: the same (rule, fingerprint) again returns the existing flag.

    Enforced rules open a flag in the moderation queue; shadow rules keep it out of the queue
    (status `shadow`), so it can be compared with the enforced rules' findings.
    """
    from django.db import IntegrityError

    status = Flag.OPEN if mode == ENFORCE else Flag.SHADOW
    try:
        with transaction.atomic():
            flag = Flag.objects.create(
                rule=rule,
                fingerprint=fingerprint[:200],
                user_id=user_id,
                client_ip=client_ip,
                severity=severity,
                status=status,
                threshold=threshold,
                observed=observed,
                summary=summary[:300],
                evidence=evidence,
            )
    except IntegrityError:
        return Flag.objects.get(rule=rule, fingerprint=fingerprint[:200]), False
    logger.warning(
        "flag raised: rule=%s mode=%s user=%s ip=%s observed=%s threshold=%s: %s",
        rule,
        mode,
        user_id,
        client_ip,
        observed,
        threshold,
        summary,
    )
    audit_record(action=f"flag.raise.{mode}", target=f"flag:{flag.pk}", after=_flag_state(flag))
    metrics.flag_raised(rule, mode)
    return flag, True


def _flag_state(flag: Flag) -> dict:
    return {
        "flag_id": flag.pk,
        "rule": flag.rule,
        "status": flag.status,
        "user_id": flag.user_id,
        "client_ip": flag.client_ip,
        "observed": flag.observed,
        "threshold": flag.threshold,
        "verdict_note": flag.verdict_note,
    }


@transaction.atomic
def alerts_after_credit(
    *,
    user_id: int,
    action_id: str,
    client_ip: str | None,
    velocity: int,
    gains: int,
    under_review: bool,
    states: dict[str, RuleState],
    velocity_before: int = 0,
    gains_before: int = 0,
) -> None:
    """The rules that judge a credited action by the player's recent gains (velocity and
    manual review). They fire on the action that crosses a threshold; the caller calls this
    only then, so it costs nothing otherwise."""
    from django.conf import settings

    velocity_crossed, review_crossed = gains_crossed(
        states,
        velocity_before=velocity_before,
        velocity=velocity,
        gains_before=gains_before,
        gains=gains,
        under_review=under_review,
    )
    raised = False
    judged = {
        "user_id": user_id,
        "action_id": action_id,
        "client_ip": client_ip,
        "fingerprint": f"user:{user_id}:{timezone.now():%Y%m%dT%H}",  # one flag a player and hour
    }
    if velocity_crossed:
        velocity_rule = states["velocity"]
        recent = _recent_actions(user_id=user_id, seconds=60)
        _, created = _flag_with_decision(
            velocity_rule,
            **judged,
            observed=velocity,
            summary=f"{velocity} points in one minute (threshold {velocity_rule.threshold:g})",
            evidence={"window_seconds": 60, "actions": recent},
            recent=recent,
            decision_evidence={"window_seconds": 60, "points_in_window": velocity},
        )
        raised |= created and velocity_rule.mode == ENFORCE
    if review_crossed:
        review_rule = states["manual_review"]
        period = settings.MANUAL_REVIEW_PERIOD
        recent = _recent_actions(user_id=user_id, seconds=period)
        flag, created = _flag_with_decision(
            review_rule,
            **judged,
            observed=gains,
            summary=f"{gains} points within {period // 60} minutes (threshold {review_rule.threshold:g}): "
            "under review, new actions held",
            evidence={"period_seconds": period, "actions": recent[-100:]},
            recent=recent,
            decision_evidence={"period_seconds": period, "gains": gains},
            severity=Flag.HIGH,
        )
        if review_rule.mode == ENFORCE and flag.status == Flag.OPEN:
            # Not after a moderator dismissed this hour's flag of the player.
            review_open(user_id=user_id, reason=flag.summary, flag=flag)
        raised |= created and review_rule.mode == ENFORCE
    if raised:
        # A closer look at the player, which must not be lost if the broker is down: it is
        # recorded with the flag and published after the commit (scores/outbox.py).
        from scores.outbox import outbox_enqueue

        outbox_enqueue("antifraud.tasks.analyse_player", {"user_id": user_id})


def _flag_with_decision(
    state: RuleState,
    *,
    user_id: int,
    action_id: str,
    client_ip: str | None,
    fingerprint: str,
    observed: float,
    summary: str,
    evidence: dict,
    recent: list[dict],
    decision_evidence: dict,
    severity: str = Flag.MEDIUM,
) -> tuple[Flag, bool]:
    """A gains rule fired on this action: its flag (the player's recent actions as evidence)
    and the action's decision pointing at it."""
    flag, created = flag_raise(
        rule=state.code,
        mode=state.mode,
        fingerprint=fingerprint,
        user_id=user_id,
        client_ip=client_ip,
        severity=severity,
        threshold=state.threshold,
        observed=observed,
        summary=summary,
        evidence={**evidence, "action_ids": [action["action_id"] for action in recent]},
    )
    decision_record(
        rule=state.code,
        mode=state.mode,
        outcome=Decision.FLAGGED,
        user_id=user_id,
        action_id=action_id,
        client_ip=client_ip,
        threshold=state.threshold,
        observed=observed,
        evidence=decision_evidence,
        flag=flag,
    )
    return flag, created


def _recent_actions(*, user_id: int, seconds: int) -> list[dict]:
    from scores.models import ScoreHistory

    since = timezone.now() - timedelta(seconds=seconds)
    rows = ScoreHistory.objects.filter(user_id=user_id, created_at__gte=since, voided_at__isnull=True)
    return [
        {"action_id": action_id, "type": kind, "points": points, "at": at.isoformat(), "ip": ip}
        for action_id, kind, points, at, ip in rows.order_by("created_at").values_list(
            "action_id", "action_type", "points", "created_at", "client_ip"
        )[:1000]
    ]


# --- reviews and held actions ---------------------------------------------------------------


def review_key(user_id: int) -> str:
    return f"review:{user_id}"


def review_open(*, user_id: int, reason: str, flag: Flag | None = None, by=None) -> Review:
    """Put a player under review (once): from now on their actions are held."""
    from django.db import IntegrityError

    try:
        with transaction.atomic():
            review = Review.objects.create(user_id=user_id, reason=reason[:300], flag=flag)
            audit_record(
                actor=by,
                action="review.open",
                target=f"user:{user_id}",
                after={"review_id": review.pk, "reason": reason},
            )
    except IntegrityError:
        return Review.objects.get(user_id=user_id, closed_at__isnull=True)
    transaction.on_commit(lambda: _review_mark(user_id, True))
    return review


def review_close(*, review: Review, by=None, release: bool) -> int:
    """End a review; the player's held actions are released (counted) or rejected, in the
    same transaction. Returns how many held actions were decided."""
    with transaction.atomic():
        if not Review.objects.filter(pk=review.pk, closed_at__isnull=True).update(
            closed_at=timezone.now(), closed_by=by
        ):
            return 0
        audit_record(
            actor=by,
            action="review.close",
            target=f"user:{review.user_id}",
            before={"review_id": review.pk, "open": True},
            after={
                "review_id": review.pk,
                "open": False,
                "held_actions": "released" if release else "rejected",
            },
        )
        decided = 0
        for held in HeldAction.objects.filter(user_id=review.user_id, status=HeldAction.HELD):
            decided += held_release(held=held, by=by) if release else held_reject(held=held, by=by)
        user_id = review.user_id
        # Unmarked only once the held actions are decided: a request admitted meanwhile is held
        # (or, with the review closed, credited like any other).
        transaction.on_commit(lambda: (_review_mark(user_id, False), counters_reset(user_id)))
    return decided


def _review_mark(user_id: int, under_review: bool) -> None:
    """Tell the admission script (Redis) and this process whether the player is reviewed."""
    client = redis_client()
    if client is not None:
        try:
            if under_review:
                client.set(review_key(user_id), "1")
            else:
                client.delete(review_key(user_id))
        except RedisError:
            logger.error("redis unreachable; review of user %s synced by reviews_sync later", user_id)
    local_limits.review_set(user_id, under_review)


def counters_reset(user_id: int) -> None:
    """Forget a player's velocity and gains (a moderator judged them): the rules start over."""
    client = redis_client()
    if client is not None:
        try:
            client.delete(f"velocity:{user_id}", f"gains:{user_id}")
        except RedisError:
            logger.error("redis unreachable; gains of user %s not reset", user_id)
    local_limits.counters_reset(user_id)


def reviews_sync() -> int:
    """Make Redis agree with the open reviews (after Redis lost data, or a failed unmark):
    mark every player under review, unmark the others. Returns the open reviews."""
    from antifraud.selectors import reviewed_player_ids

    players = reviewed_player_ids()
    for user_id in players:
        _review_mark(user_id, True)
    client = redis_client()
    if client is not None:
        try:
            for key in client.scan_iter(match="review:*", count=1000):
                name = key.decode() if isinstance(key, bytes) else key
                suffix = name.partition(":")[2]
                if suffix.isdigit() and int(suffix) not in players:
                    client.delete(name)
        except RedisError:
            logger.error("redis unreachable; stale review marks removed later")
    return len(players)


def held_record(*, user_id: int, action) -> tuple[HeldAction | None, bool]:
    """Hold an action of a player under review: (the held action, whether it is new).

    (None, False) when it must be credited instead: the action_id was credited already, or
    the review has ended. Holding also writes the action's history row, voided: its
    action_id is taken (a retry can never be credited on the side) and nothing counts until
    a release.
    """
    from django.db import IntegrityError

    from scores.models import ScoreHistory

    existing = HeldAction.objects.filter(action_id=action.action_id).first()
    if existing is not None:
        return existing, False
    if ScoreHistory.objects.filter(action_id=action.action_id).exists():
        return None, False
    review = review_open_for(user_id=user_id)
    if review is None:
        return None, False
    now = timezone.now()
    try:
        with transaction.atomic():
            held = HeldAction.objects.create(
                user_id=user_id,
                action_id=action.action_id,
                action_type=action.action_type,
                points=action.points,
                request_hash=action.digest(),
                client_timestamp=action.client_timestamp,
                signature=action.signature or "",
                client_ip=action.client_ip,
                created_at=now,
            )
            ScoreHistory.objects.create(
                user_id=user_id,
                action_id=action.action_id,
                action_type=action.action_type,
                points=action.points,
                request_hash=action.digest(),
                client_ip=action.client_ip,
                created_at=now,
                voided_at=now,
            )
            decision_record(
                rule="manual_review",
                mode=ENFORCE,
                outcome=Decision.HELD,
                user_id=user_id,
                action_id=action.action_id,
                client_ip=action.client_ip,
                evidence={"review_id": review.pk, "points": action.points},
                flag=review.flag,
            )
    except IntegrityError:
        existing = HeldAction.objects.filter(action_id=action.action_id).first()
        return (existing, False) if existing else (None, False)
    return held, True


def held_release(*, held: HeldAction, by=None) -> int:
    """Count a held action: its history row comes back and the points are added, in one
    transaction; the board (and open scoreboards) follow after the commit."""
    from django.db.models import F

    from leaderboard.services import leaderboard_user_sync
    from scores.models import Score, ScoreHistory

    with transaction.atomic():
        if not HeldAction.objects.filter(pk=held.pk, status=HeldAction.HELD).update(
            status=HeldAction.RELEASED, decided_at=timezone.now(), decided_by=by
        ):
            return 0
        now = timezone.now()
        if ScoreHistory.objects.filter(action_id=held.action_id, voided_at__isnull=False).update(
            voided_at=None, created_at=now
        ):
            Score.objects.get_or_create(user_id=held.user_id, defaults={"total_score": 0, "updated_at": now})
            Score.objects.filter(user_id=held.user_id).update(
                total_score=F("total_score") + held.points, updated_at=now
            )
        _held_verdict(held, by=by, verdict=Decision.OVERTURNED, action="held.release")
        user_id = held.user_id
        # The exact entry from the database: a banned or inactive player stays off the board.
        transaction.on_commit(lambda: leaderboard_user_sync(user_id=user_id))
    logger.info(
        "held action released: user=%s action_id=%s points=%s", held.user_id, held.action_id, held.points
    )
    return 1


def held_reject(*, held: HeldAction, by=None) -> int:
    """Refuse a held action for good: its voided history row stays, so it never counts."""
    with transaction.atomic():
        if not HeldAction.objects.filter(pk=held.pk, status=HeldAction.HELD).update(
            status=HeldAction.REJECTED, decided_at=timezone.now(), decided_by=by
        ):
            return 0
        _held_verdict(held, by=by, verdict=Decision.UPHELD, action="held.reject")
    return 1


def _held_verdict(held: HeldAction, *, by, verdict: str, action: str) -> None:
    Decision.objects.filter(action_id=held.action_id, outcome=Decision.HELD, verdict="").update(
        verdict=verdict, verdict_by=by, verdict_at=timezone.now()
    )
    audit_record(
        actor=by,
        action=action,
        target=f"action:{held.action_id}",
        before={"status": HeldAction.HELD, "user_id": held.user_id, "points": held.points},
        after={"status": HeldAction.RELEASED if verdict == Decision.OVERTURNED else HeldAction.REJECTED},
    )


# --- moderation of flags ---------------------------------------------------------------------


def flag_dismiss(*, flag: Flag, by=None, note: str = "") -> bool:
    """A false positive: the flag is closed, its decisions overturned; a review it opened is
    closed and the player's held actions released. All in one transaction."""
    before = _flag_state(flag)
    with transaction.atomic():
        if not Flag.objects.filter(pk=flag.pk, status__in=[Flag.OPEN, Flag.SHADOW]).update(
            status=Flag.DISMISSED, resolved_at=timezone.now(), resolved_by=by, verdict_note=note[:500]
        ):
            return False
        flag.refresh_from_db()
        flag.decisions.filter(verdict="").update(
            verdict=Decision.OVERTURNED, verdict_by=by, verdict_at=timezone.now()
        )
        audit_record(
            actor=by, action="flag.dismiss", target=f"flag:{flag.pk}", before=before, after=_flag_state(flag)
        )
        review = Review.objects.filter(flag=flag, closed_at__isnull=True).first()
        if review is not None:
            review_close(review=review, by=by, release=True)
        if flag.user_id:
            user_id = flag.user_id
            transaction.on_commit(lambda: counters_reset(user_id))
    return True


def flag_confirm(*, flag: Flag, by=None, note: str = "", revert: bool = True) -> int:
    """Confirmed fraud: the flag is closed, its decisions upheld; with `revert`, the points of
    the actions in its evidence are voided and the totals, the board and open scoreboards
    corrected; the player's held actions are rejected and their review closed. All in one
    transaction: a failure changes nothing and can be retried.

    Returns the points reverted.
    """
    from scores.services import score_revert

    before = _flag_state(flag)
    with transaction.atomic():
        if not Flag.objects.filter(pk=flag.pk, status__in=[Flag.OPEN, Flag.SHADOW]).update(
            status=Flag.CONFIRMED, resolved_at=timezone.now(), resolved_by=by, verdict_note=note[:500]
        ):
            return 0
        flag.refresh_from_db()
        flag.decisions.filter(verdict="").update(
            verdict=Decision.UPHELD, verdict_by=by, verdict_at=timezone.now()
        )
        audit_record(
            actor=by, action="flag.confirm", target=f"flag:{flag.pk}", before=before, after=_flag_state(flag)
        )
        reverted = 0
        action_ids = flag.evidence.get("action_ids") or []
        if revert and flag.user_id and action_ids:
            reverted = score_revert(
                user_id=flag.user_id, action_ids=action_ids, by=by, reason=f"flag {flag.pk}"
            )
        if flag.user_id:
            review = review_open_for(user_id=flag.user_id)
            if review is not None:
                review_close(review=review, by=by, release=False)
            user_id = flag.user_id
            transaction.on_commit(lambda: counters_reset(user_id))
    return reverted


def rule_mode_set(*, code: str, mode: str, threshold: float | None = None, by=None):
    """Switch a rule (off, shadow, enforce) and optionally override its threshold."""
    from antifraud.models import Rule
    from antifraud.rules import RULES, rules_forget

    if code not in RULES or mode not in (OFF, "shadow", ENFORCE):
        raise ValueError(f"unknown rule or mode: {code} {mode}")
    rule, _ = Rule.objects.get_or_create(code=code, defaults={"description": RULES[code].description})
    before = {"mode": rule.mode, "threshold": rule.threshold}
    rule.mode, rule.threshold = mode, threshold
    rule.save()
    audit_record(
        actor=by,
        action="rule.set",
        target=f"rule:{code}",
        before=before,
        after={"mode": mode, "threshold": threshold},
    )
    rules_forget()
    return rule
