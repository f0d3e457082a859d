from django.core.validators import RegexValidator
from rest_framework import serializers

from scoreboard_project.fields import StrictCharField


class CredentialsInput(serializers.Serializer):
    username = StrictCharField(max_length=150, trim_whitespace=False)
    password = StrictCharField(max_length=4096, trim_whitespace=False)


class RegisterOutput(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField()


class RefreshInput(serializers.Serializer):
    refresh = StrictCharField(max_length=4096)


class TicketOutput(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField()


class RegisterInput(CredentialsInput):
    """The registration body as the schema documents it; accounts.services.user_register
    enforces the same rules (and Django's password validators) with clearer messages."""

    username = StrictCharField(
        min_length=3,
        max_length=50,
        validators=[RegexValidator(r"^[A-Za-z0-9_.\-]{3,50}$")],
        help_text="3-50 letters, digits, `_`, `.` or `-`; unique regardless of case.",
    )
    password = StrictCharField(
        min_length=8,
        max_length=4096,
        trim_whitespace=False,
        help_text="At least 8 characters, not common, not all digits, not like the username.",
    )
