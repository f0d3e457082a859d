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
