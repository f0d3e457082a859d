from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An IntegerField that refuses strings, floats and booleans in JSON bodies."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A FloatField that refuses strings and booleans in JSON bodies."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A BooleanField that takes only JSON true and false."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_serializer(component_name="Error")
class ErrorOutput(serializers.Serializer):
    """The error shape of API.md section 5 (`success` is always false; the list of
    `error_code`s is added when the schema is generated: scoreboard_project.openapi)."""

    success = serializers.BooleanField()
    error_code = serializers.CharField()
    message = serializers.CharField(help_text="Human readable.")
    retry_after = serializers.IntegerField(
        required=False, min_value=1, help_text="Seconds to wait, where waiting helps."
    )
    details = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="Field (or check) -> problem."
    )
