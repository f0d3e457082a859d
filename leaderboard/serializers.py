from rest_framework import serializers


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
