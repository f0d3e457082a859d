from celery import shared_task

from antifraud.services import bans_restore as restore


@shared_task(name="antifraud.tasks.bans_restore")
def bans_restore() -> int:
    """Put players whose bans ended back into the rankings (celery beat, every 30 s)."""
    return restore()
