from celery import shared_task

from antifraud import patterns, services
from scores.outbox import exactly_once


@shared_task(name="antifraud.tasks.bans_restore")
def bans_restore() -> int:
    """Put players whose bans ended back into the rankings, and re-mark the bans in force in
    Redis in case it lost them (celery beat, every 30 s)."""
    services.bans_sync()
    return services.bans_restore()


@shared_task(name="antifraud.tasks.reviews_sync")
def reviews_sync() -> int:
    """Re-mark open reviews in Redis, in case Redis lost them (celery beat, every minute)."""
    return services.reviews_sync()


@shared_task(name="antifraud.tasks.analyse_patterns")
def analyse_patterns(window: int | None = None, user_ids: list[int] | None = None) -> dict[str, int]:
    """The pattern rules over the last `window` seconds, for every player or the given ids
    (celery beat, every PATTERN_ANALYSIS_INTERVAL); safe to run twice. Returns the new flags
    per rule."""
    return patterns.analyse(window=window, user_ids=user_ids)


@shared_task(bind=True, name="antifraud.tasks.analyse_player")
@exactly_once
def analyse_player(self, user_id: int) -> dict[str, int]:
    """The pattern rules over one player's recent history, at once: sent through the outbox
    (with the flag that asked for it) when a per-request rule flags the player."""
    return patterns.analyse(user_ids=[user_id])
