from django.conf import settings
from django.db import models
from django.utils import timezone


class Ban(models.Model):
    """A temporary suspension: automatic (repeated rate-limit violations) or a moderator's.

    While it runs the player gets 403 ACCOUNT_SUSPENDED and appears in no ranking.
    """

    AUTOMATIC, MODERATOR = "automatic", "moderator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bans")
    reason = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=[(AUTOMATIC, "automatic"), (MODERATOR, "moderator")])
    level = models.PositiveSmallIntegerField(
        default=1, help_text="Step of the penalty ladder (automatic bans)."
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restored_at = models.DateTimeField(
        null=True, blank=True, help_text="When the player was put back into the rankings."
    )

    class Meta:
        db_table = "ban"
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["user", "ends_at"]), models.Index(fields=["restored_at", "ends_at"])]

    def __str__(self) -> str:
        return f"{self.user} until {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def in_force(self) -> bool:
        return self.lifted_at is None and self.ends_at > timezone.now()
