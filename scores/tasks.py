from celery import shared_task

from scores.outbox import outbox_relay


@shared_task(name="scores.tasks.outbox_relay")
def outbox_relay_task() -> int:
    """Publish the outbox messages that were not published after their commit (beat)."""
    return outbox_relay().sent
