from django.db import models
from rest_framework import serializers

from scoreboard_project.fields import StrictBooleanField, StrictCharField


class BoardEntryOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    score = serializers.IntegerField()
    last_updated = serializers.DateTimeField()


class ScoreboardOutput(serializers.Serializer):
    leaderboard = BoardEntryOutput(many=True)
    last_updated = serializers.DateTimeField(allow_null=True)
    total_players = serializers.IntegerField()


class PeriodOutput(serializers.Serializer):
    key = serializers.CharField(help_text="all, event, 2026-12-04, 2026-W49 or 2026-12")
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True, help_text="excluded")


class BoardOutput(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    action_types = serializers.ListField(child=serializers.CharField(), help_text="empty: every type")
    operator = serializers.ChoiceField(choices=["sum", "best", "latest"])
    order = serializers.ChoiceField(choices=["desc", "asc"], help_text="desc: higher is better")
    window = serializers.ChoiceField(choices=["all_time", "daily", "weekly", "monthly", "event"])
    time_zone = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    tie_policy = serializers.ChoiceField(choices=["shared", "first_reached"])
    period = PeriodOutput(allow_null=True, help_text="the current period; null outside an event")


class BoardListOutput(serializers.Serializer):
    boards = BoardOutput(many=True)


class BoardPageOutput(serializers.Serializer):
    board = serializers.CharField()
    period = PeriodOutput()
    leaderboard = BoardEntryOutput(many=True)
    total_players = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True, help_text="pass as ?cursor= for the next page")


class BoardAroundOutput(serializers.Serializer):
    board = serializers.CharField()
    period = PeriodOutput()
    player = BoardEntryOutput(allow_null=True, help_text="null: the caller is not on this board")
    leaderboard = BoardEntryOutput(many=True)
    total_players = serializers.IntegerField()


class BoardPlayerOutput(serializers.Serializer):
    board = serializers.CharField()
    period = PeriodOutput()
    player = BoardEntryOutput()
    total_players = serializers.IntegerField()


class BoardDefinition(serializers.ModelSerializer):
    """A board as staff create and edit it (JSON types strictly: no 0 for false)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.BooleanField: StrictBooleanField,
    }

    class Meta:
        from leaderboard.models import Board

        model = Board
        fields = [
            "code",
            "title",
            "action_types",
            "operator",
            "order",
            "window",
            "starts_at",
            "ends_at",
            "time_zone",
            "tie_policy",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    action_types = serializers.ListField(
        child=StrictCharField(max_length=50),
        required=False,
        max_length=100,
        help_text="empty: every type",
    )

    def validate_code(self, value: str) -> str:
        if self.instance is not None and value != self.instance.code:
            raise serializers.ValidationError("A board's code cannot change.")
        return value

    def validate(self, attrs: dict) -> dict:
        from django.core.exceptions import ValidationError

        from leaderboard.models import Board

        candidate = Board(**{**(self._current() if self.instance else {}), **attrs})
        try:
            candidate.clean()
        except ValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None
        return attrs

    def _current(self) -> dict:
        return {
            name: getattr(self.instance, name)
            for name in self.Meta.fields
            if name not in ("created_at", "updated_at")
        }
