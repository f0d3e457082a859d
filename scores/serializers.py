"""Schemas of the score endpoints for the OpenAPI document; parsing is scores.validation,
which refuses exactly what these schemas call invalid (checked by schemathesis)."""

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers


class ScoreSubmitInput(serializers.Serializer):
    action_id = serializers.UUIDField(
        help_text="UUID chosen by the client (v4 recommended), 8-4-4-4-12 hex digits: one action "
        "of one user, forever."
    )
    action_type = serializers.CharField(
        max_length=50, help_text="An enabled action type, e.g. `quest`, `match_win`, `level_up`."
    )
    points = serializers.IntegerField(
        min_value=1,
        max_value=settings.MAX_POINTS_PER_ACTION,
        help_text='A JSON integer (not `"10"`, not `10.0`) within the action type\'s bounds and '
        "MAX_POINTS_PER_ACTION.",
    )
    client_timestamp = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When the action happened, with a time zone; at most CLIENT_TIMESTAMP_MAX_SKEW "
        "seconds ahead and CLIENT_TIMESTAMP_MAX_AGE seconds old. Required by some action types. "
        "`null` is the same as absent.",
    )
    signature = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=512,
        validators=[RegexValidator(r"^(?:[0-9a-fA-F]{2})+$")],
        help_text="Hex HMAC-SHA256 of `<user_id>\\n<action_id>\\n<action_type>\\n<points>\\n"
        "<client_timestamp as sent, or empty>` with the action type's secret, where the type "
        "requires it (a wrong one is 403). `null` is the same as absent.",
    )


class ScoreSubmitOutput(serializers.Serializer):
    success = serializers.BooleanField()
    user_id = serializers.IntegerField()
    new_score = serializers.IntegerField()
    rank = serializers.IntegerField(help_text="Competition rank among all ranked players (ties share).")


class ScoreHeldOutput(ScoreSubmitOutput):
    status = serializers.ChoiceField(
        choices=["pending_review"],
        help_text="Held for a moderator; `new_score` and `rank` are unchanged until released.",
    )


class BatchItemInput(ScoreSubmitInput):
    user_id = serializers.IntegerField(min_value=1, help_text="The player credited.")


class BatchInput(serializers.Serializer):
    # The hook in scoreboard_project/openapi.py widens the items to `anyOf: [BatchItem, {}]`.
    actions = BatchItemInput(
        many=True,
        min_length=1,
        max_length=settings.BATCH_MAX_ACTIONS,
        help_text="1 to BATCH_MAX_ACTIONS actions. Each item is checked on its own: an item that "
        "does not fit the item schema (even one that is not an object) does not refuse the batch, "
        "it is answered with its own error in `results`.",
    )


class BatchResultOutput(serializers.Serializer):
    action_id = serializers.UUIDField(allow_null=True, help_text="null when the item had none usable.")
    status = serializers.IntegerField(help_text="What a single POST /api/scores would have answered.")
    success = serializers.BooleanField()
    user_id = serializers.IntegerField(required=False)
    new_score = serializers.IntegerField(required=False)
    rank = serializers.IntegerField(required=False)
    replayed = serializers.BooleanField(required=False, help_text="true when the action was credited before.")
    error_code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    retry_after = serializers.IntegerField(required=False)
    details = serializers.DictField(child=serializers.CharField(), required=False)


class BatchOutput(serializers.Serializer):
    success = serializers.BooleanField()
    results = BatchResultOutput(many=True, help_text="One per action, in the order sent.")
