"""Reads for anti-fraud: reviews, flags, a player's recent history."""

from __future__ import annotations

from django.utils import timezone

from antifraud.models import Ban, Review


def reviewed_player_ids() -> set[int]:
    """Players with an open review (their new actions are held)."""
    return set(Review.objects.filter(closed_at__isnull=True).values_list("user_id", flat=True))


def review_open_for(*, user_id: int) -> Review | None:
    return Review.objects.filter(user_id=user_id, closed_at__isnull=True).first()


def bans_in_force() -> dict[int, float]:
    """user_id -> seconds left, for every ban in force."""
    now = timezone.now()
    rows = Ban.objects.filter(lifted_at__isnull=True, ends_at__gt=now).values_list("user_id", "ends_at")
    left: dict[int, float] = {}
    for user_id, ends_at in rows:
        left[user_id] = max(left.get(user_id, 0.0), (ends_at - now).total_seconds())
    return left
