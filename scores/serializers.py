"""Schemas of POST /api/scores for the OpenAPI document; parsing is scores.validation."""

from rest_framework import serializers


class ScoreSubmitInput(serializers.Serializer):
    action_id = serializers.UUIDField(help_text="UUID v4 chosen by the client; one action, forever.")
    action_type = serializers.CharField(max_length=50)
    points = serializers.IntegerField(
        min_value=1, help_text="A JSON integer within the action type's bounds."
    )
    client_timestamp = serializers.DateTimeField(required=False)
    signature = serializers.CharField(
        required=False, help_text="Hex HMAC-SHA256, where the action type requires it."
    )


class ScoreSubmitOutput(serializers.Serializer):
    success = serializers.BooleanField()
    user_id = serializers.IntegerField()
    new_score = serializers.IntegerField()
    rank = serializers.IntegerField()


class BatchItemInput(ScoreSubmitInput):
    user_id = serializers.IntegerField(min_value=1, help_text="The player credited.")


class BatchInput(serializers.Serializer):
    actions = BatchItemInput(many=True, help_text="1 to BATCH_MAX_ACTIONS (default 500) actions.")


class BatchResultOutput(serializers.Serializer):
    action_id = serializers.UUIDField(allow_null=True)
    status = serializers.IntegerField(help_text="What a single POST /api/scores would have answered.")
    success = serializers.BooleanField()
    user_id = serializers.IntegerField(required=False)
    new_score = serializers.IntegerField(required=False)
    rank = serializers.IntegerField(required=False)
    replayed = serializers.BooleanField(required=False)
    error_code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    details = serializers.DictField(child=serializers.CharField(), required=False)


class BatchOutput(serializers.Serializer):
    success = serializers.BooleanField()
    results = BatchResultOutput(many=True)
