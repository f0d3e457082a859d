"""Reads for scores: action-type rules (cached in process) and history lookups."""

from __future__ import annotations

from scoreboard_project import aio
from scores.models import ActionType, Score, ScoreHistory
from scores.validation import ActionRule


def _action_rules_load() -> dict[str, ActionRule]:
    return {
        row.name: ActionRule(
            row.name,
            row.min_points,
            row.max_points,
            row.enabled,
            row.signature_required,
            row.signing_secret,
            row.rate_per_window,
        )
        for row in ActionType.objects.all()
    }


_rules = aio.ProcessCopy(_action_rules_load, "ACTION_TYPES_CACHE_SECONDS")


def action_rules() -> dict[str, ActionRule]:
    """Action types by name; re-read at most every ACTION_TYPES_CACHE_SECONDS."""
    return _rules.get()


async def action_rules_async() -> dict[str, ActionRule]:
    """`action_rules` for async callers: past the TTL, the copy in hand while one refresh
    runs in the background."""
    return await _rules.get_async()


def action_rules_forget() -> None:
    """Drop this process's copy (an admin edit); other processes see it within the TTL."""
    _rules.forget()


def history_owner(*, action_id: str) -> tuple[int, str] | None:
    """(user_id, request_hash) of a credited action, or None."""
    from scores.models import ScoreHistoryArchive

    found = ScoreHistory.objects.filter(action_id=action_id).values_list("user_id", "request_hash").first()
    if found is None:  # archived by archive_history: still used, forever
        found = (
            ScoreHistoryArchive.objects.filter(action_id=action_id)
            .values_list("user_id", "request_hash")
            .first()
        )
    return found


def score_of(*, user_id: int) -> Score | None:
    return Score.objects.filter(user_id=user_id).first()


def batch_players(*, user_ids: set[int]) -> tuple[set[int], set[int]]:
    """For a game server's batch, in one trip to a worker thread: which of these players may
    score (`active_player_ids`) and which of those are under review."""
    from antifraud.selectors import reviewed_player_ids

    active = active_player_ids(user_ids=user_ids)
    # All open reviews (a few, on a partial index): cheaper than another list of 500 ids.
    return active, reviewed_player_ids() & active


def ranked_users():
    """The users who may score and appear in rankings: active and not banned."""
    from django.db.models import Exists, OuterRef
    from django.db.models.functions import Now

    from accounts.models import User
    from antifraud.models import Ban

    banned = Ban.objects.filter(user_id=OuterRef("pk"), lifted_at__isnull=True, ends_at__gt=Now())
    return User.objects.filter(is_active=True).filter(~Exists(banned))


def active_player_ids(*, user_ids: set[int]) -> set[int]:
    """Which of these users exist, are active and are not banned."""
    return set(ranked_users().filter(id__in=user_ids).values_list("id", flat=True))
