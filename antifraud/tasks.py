from celery import shared_task

from antifraud import patterns, services


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
