"""Bans: the one road that suspends a player and brings them back."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from antifraud.models import Ban
from antifraud.ratelimits import local_limits
from scoreboard_project.redis import RedisError, redis_client

logger = logging.getLogger("scoreboard.antifraud")
SUSPENDED = 4403


def ban_key(user_id: int) -> str:
    return f"ban:{user_id}"


def ban_record_automatic(*, user_id: int, level: int, seconds: float) -> Ban:
    """Record the ban the admission script just placed (Redis holds it already)."""
    ban = Ban.objects.create(
        user_id=user_id,
        reason=f"repeated rate-limit violations (step {level} of the penalty ladder)",
        source=Ban.AUTOMATIC,
        level=level,
        ends_at=timezone.now() + timedelta(seconds=seconds),
    )
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
    Ban.objects.filter(pk=ban.pk, lifted_at__isnull=True).update(lifted_at=timezone.now(), lifted_by=by)
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
