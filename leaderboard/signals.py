"""Keep the ranking index clean when a score row disappears (a user deleted in the admin)."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from scores.models import Score


@receiver(post_delete, sender=Score)
def score_deleted(sender, instance: Score, **kwargs) -> None:
    from leaderboard.services import leaderboard_user_sync

    user_id = instance.user_id
    transaction.on_commit(lambda: leaderboard_user_sync(user_id=user_id))
