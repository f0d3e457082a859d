"""WebSocket routes."""

from django.urls import path

from leaderboard.consumers import ScoreboardConsumer

websocket_urlpatterns = [path("ws/scoreboard", ScoreboardConsumer.as_asgi())]
