from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class ActionType(models.Model):
    """An action a player can be credited for, with its point bounds; edited in the admin."""

    name = models.CharField(max_length=50, unique=True)
    min_points = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    max_points = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(2**31 - 1)])
    enabled = models.BooleanField(default=True)
    rate_per_window = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="At most this many actions of this type per player in any RATE_LIMIT_WINDOW "
        "(on top of RATE_LIMIT_PER_USER); empty: no limit of its own.",
    )
    signature_required = models.BooleanField(
        default=False, help_text="Refuse actions of this type without a valid client signature."
    )
    signing_secret = models.CharField(
        max_length=128,
        blank=True,
        help_text="HMAC-SHA256 key shared with the game client; signs "
        '"user_id\naction_id\naction_type\npoints\nclient_timestamp".',
    )
    description = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "action_type"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_points__gte=1) & Q(max_points__gte=F("min_points")),
                name="action_type_bounds_ordered",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Score(models.Model):
    """A player's running total: one row per user, created by their first accepted action."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="score")
    total_score = models.BigIntegerField(default=0)
    # When the total last changed: the moment the player reached it, the tie-break of ranks.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "score"
        indexes = [
            models.Index(
                F("total_score").desc(),
                F("updated_at").asc(),
                F("user").asc(),
                name="idx_scores_total_score",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.total_score}"


class ScoreHistory(models.Model):
    """One credited action; `action_id` is unique forever, which makes credits exactly-once."""

    # Indexed by idx_history_user_time (user first): an index of its own would only cost
    # every credit one more index entry.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="score_history", db_index=False
    )
    # Unique by a constraint rather than unique=True, which on PostgreSQL also builds a
    # varchar_pattern_ops index for LIKE 'prefix%' that nothing here asks (the admin's
    # search is a case-insensitive contains, which it cannot serve).
    action_id = models.CharField(max_length=36)
    action_type = models.CharField(max_length=50)
    points = models.IntegerField()
    # Digest of the submitted body: a replay must match it, or it is a 409.
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    # The client's address as the server saw it (TRUSTED_PROXIES), the evidence of IP rules.
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # Set when a moderator confirmed the action as fraud: its points no longer count.
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "score_history"
        verbose_name_plural = "score history"
        constraints = [models.UniqueConstraint(fields=["action_id"], name="uniq_history_action_id")]
        indexes = [
            models.Index(fields=["user", "created_at"], name="idx_history_user_time"),
            models.Index(fields=["created_at"], name="idx_history_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action_id} ({self.points})"


class ScoreHistoryArchive(models.Model):
    """History rows moved out of `score_history` by `manage.py archive_history`: the same
    columns (and ids), so totals still equal live + archived accepted points, and their
    `action_id`s stay used forever (the credit statement refuses them too)."""

    id = models.BigIntegerField(primary_key=True)  # the row's id in score_history
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action_id = models.CharField(max_length=36, unique=True)
    action_type = models.CharField(max_length=50)
    points = models.IntegerField()
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "score_history_archive"
        verbose_name_plural = "score history archive"
        indexes = [models.Index(fields=["user", "created_at"], name="idx_archive_user_time")]

    def __str__(self) -> str:
        return f"{self.action_id} ({self.points}, archived)"


class OutboxMessage(models.Model):
    """A Celery task recorded in the same transaction as the work it belongs to, published
    after the commit (or later by the relay) with its id as the task id: nothing is lost
    when the broker is down, and consumers skip ids they have already processed."""

    id = models.UUIDField(primary_key=True)
    task_name = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # The next publishing attempt is not before this (backoff after a failure).
    available_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "outbox_message"
        indexes = [
            models.Index(
                fields=["available_at"], name="idx_outbox_pending", condition=Q(sent_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.id}"


class ProcessedTask(models.Model):
    """Task ids a consumer has processed: a redelivered outbox message is skipped."""

    task_id = models.CharField(max_length=64, primary_key=True)
    task_name = models.CharField(max_length=200)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "processed_task"

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}"
