from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ErrorOutput(serializers.Serializer):
    """The error shape of API.md section 5."""

    success = serializers.BooleanField(default=False)
    error_code = serializers.CharField()
    message = serializers.CharField()
    retry_after = serializers.IntegerField(required=False)
    details = serializers.DictField(child=serializers.CharField(), required=False)
