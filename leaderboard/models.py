from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

GLOBAL_BOARD = "global"


def time_zone_validate(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris).") from None


class Board(models.Model):
    """A leaderboard: which actions count, how they add up, and the window it resets on.

    The built-in `global` board is the all-time sum of every action, the board of
    GET /api/scoreboard; its definition is fixed.
    """

    class Operator(models.TextChoices):
        SUM = "sum", "sum of points"
        BEST = "best", "best single action"
        LATEST = "latest", "latest action"

    class Order(models.TextChoices):
        DESC = "desc", "higher is better"
        ASC = "asc", "lower is better"

    class Window(models.TextChoices):
        ALL_TIME = "all_time", "all time"
        DAILY = "daily", "daily"
        WEEKLY = "weekly", "weekly (ISO weeks, from Monday)"
        MONTHLY = "monthly", "monthly"
        EVENT = "event", "fixed start and end"

    class Ties(models.TextChoices):
        SHARED = "shared", "equal values share a rank (1, 2, 2, 4)"
        FIRST_REACHED = "first_reached", "the first to reach a value ranks higher (1, 2, 3, 4)"

    code = models.CharField(
        max_length=40,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", "Lower-case letters, digits, _ and -.")],
    )
    title = models.CharField(max_length=100)
    action_types = models.JSONField(
        default=list, blank=True, help_text="Names of the action types that count; empty: every type."
    )
    operator = models.CharField(max_length=10, choices=Operator.choices, default=Operator.SUM)
    order = models.CharField(max_length=4, choices=Order.choices, default=Order.DESC)
    window = models.CharField(max_length=10, choices=Window.choices, default=Window.ALL_TIME)
    starts_at = models.DateTimeField(
        null=True, blank=True, help_text="Event boards: first moment that counts."
    )
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Event boards: the end (excluded).")
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[time_zone_validate],
        help_text="Daily, weekly and monthly boards reset at midnight in this zone.",
    )
    tie_policy = models.CharField(max_length=14, choices=Ties.choices, default=Ties.SHARED)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "board"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(window="event") | (Q(starts_at__isnull=False) & Q(ends_at__isnull=False)),
                name="board_event_has_bounds",
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=models.F("starts_at")),
                name="board_event_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_global(self) -> bool:
        return self.code == GLOBAL_BOARD

    def clean(self) -> None:
        errors = {}
        if self.window == self.Window.EVENT and (self.starts_at is None or self.ends_at is None):
            errors["ends_at"] = "An event board needs starts_at and ends_at."
        elif self.starts_at is not None and self.ends_at is not None and self.ends_at <= self.starts_at:
            errors["ends_at"] = "ends_at must be after starts_at."
        if not isinstance(self.action_types, list) or not all(
            isinstance(name, str) and name for name in self.action_types
        ):
            errors["action_types"] = "A list of action type names."
        if self.is_global and (
            self.action_types
            or (self.operator, self.order, self.window, self.tie_policy)
            != (self.Operator.SUM, self.Order.DESC, self.Window.ALL_TIME, self.Ties.SHARED)
            or not self.enabled
        ):
            errors["code"] = (
                "The global board is the all-time sum of every action (GET /api/scoreboard); only its title may change."
            )
        if errors:
            raise ValidationError(errors)


class BoardStanding(models.Model):
    """A closed period's final standings, kept for history and prizes."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="standings")
    period = models.CharField(max_length=20)
    rank = models.PositiveIntegerField()
    position = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    value = models.BigIntegerField()
    reached_at = models.DateTimeField()
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "board_standing"
        constraints = [
            models.UniqueConstraint(fields=["board", "period", "position"], name="uniq_standing_position"),
            models.UniqueConstraint(fields=["board", "period", "user"], name="uniq_standing_user"),
        ]

    def __str__(self) -> str:
        return f"{self.board_id} {self.period} #{self.rank} user {self.user_id}"


class BoardArchive(models.Model):
    """That a period's standings were archived (an empty period has no standings)."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="archives")
    period = models.CharField(max_length=20)
    players = models.PositiveIntegerField()
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "board_archive"
        constraints = [models.UniqueConstraint(fields=["board", "period"], name="uniq_archive_period")]

    def __str__(self) -> str:
        return f"{self.board_id} {self.period}"
