from rest_framework import serializers

from antifraud.models import Ban, Decision, Flag, HeldAction, Rule
from antifraud.rules import RULES
from scoreboard_project.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)

MAX_OFFSET = 1_000_000


class FlagOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", default=None, read_only=True)

    class Meta:
        model = Flag
        fields = [
            "id",
            "rule",
            "severity",
            "status",
            "user_id",
            "username",
            "client_ip",
            "threshold",
            "observed",
            "summary",
            "evidence",
            "created_at",
            "resolved_at",
            "verdict_note",
        ]


class DecisionOutput(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = [
            "id",
            "rule",
            "mode",
            "outcome",
            "user_id",
            "action_id",
            "client_ip",
            "threshold",
            "observed",
            "evidence",
            "flag_id",
            "created_at",
            "verdict",
            "verdict_at",
        ]


class HeldActionOutput(serializers.ModelSerializer):
    class Meta:
        model = HeldAction
        fields = [
            "id",
            "user_id",
            "action_id",
            "action_type",
            "points",
            "client_ip",
            "created_at",
            "status",
            "decided_at",
        ]


class BanOutput(serializers.ModelSerializer):
    class Meta:
        model = Ban
        fields = ["id", "user_id", "reason", "source", "level", "starts_at", "ends_at", "lifted_at"]


class RuleOutput(serializers.ModelSerializer):
    effective_threshold = serializers.SerializerMethodField()

    class Meta:
        model = Rule
        fields = ["code", "mode", "threshold", "effective_threshold", "description", "updated_at"]

    def get_effective_threshold(self, rule) -> float:
        from antifraud.rules import RuleState

        return RuleState(rule.code, rule.mode, rule.threshold).threshold if rule.code in RULES else 0.0


class VerdictInput(serializers.Serializer):
    note = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class ConfirmInput(VerdictInput):
    revert = StrictBooleanField(default=True, help_text="Void the flagged actions and take their points off.")


class ConfirmOutput(serializers.Serializer):
    flag = FlagOutput()
    points_reverted = serializers.IntegerField()


class BanInput(serializers.Serializer):
    user_id = StrictIntegerField(min_value=1, max_value=2**63 - 1)
    minutes = StrictIntegerField(min_value=1, max_value=525_600)
    reason = StrictCharField(max_length=200)


class RevertInput(serializers.Serializer):
    action_ids = serializers.ListField(
        child=serializers.UUIDField(format="hex_verbose"), min_length=1, max_length=1000
    )
    reason = StrictCharField(max_length=200, required=False, default="")


class RevertOutput(serializers.Serializer):
    user_id = serializers.IntegerField()
    points_reverted = serializers.IntegerField()
    new_score = serializers.IntegerField()


class RuleInput(serializers.Serializer):
    mode = serializers.ChoiceField(choices=Rule.MODES)
    threshold = StrictFloatField(required=False, allow_null=True, default=None, min_value=0, max_value=1e12)


class PageQuery(serializers.Serializer):
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class FlagQuery(PageQuery):
    status = serializers.ChoiceField(choices=[value for value, _ in Flag.STATUSES], required=False)
    rule = serializers.ChoiceField(choices=sorted(RULES), required=False)
    severity = serializers.ChoiceField(choices=[value for value, _ in Flag.SEVERITIES], required=False)
    q = serializers.CharField(required=False, max_length=150, help_text="Username or address (prefix).")


class DecisionQuery(PageQuery):
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    rule = serializers.ChoiceField(choices=sorted(RULES), required=False)
    action_id = serializers.CharField(required=False, max_length=36)


class HeldQuery(PageQuery):
    status = serializers.ChoiceField(
        choices=[HeldAction.HELD, HeldAction.RELEASED, HeldAction.REJECTED],
        required=False,
        default=HeldAction.HELD,
    )


class BanQuery(PageQuery):
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
