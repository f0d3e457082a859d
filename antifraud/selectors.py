"""Reads for anti-fraud: reviews, flags, a player's recent history."""

from __future__ import annotations

from antifraud.models import Review


def reviewed_player_ids() -> set[int]:
    """Players with an open review (their new actions are held)."""
    return set(Review.objects.filter(closed_at__isnull=True).values_list("user_id", flat=True))


def review_open_for(*, user_id: int) -> Review | None:
    return Review.objects.filter(user_id=user_id, closed_at__isnull=True).first()
