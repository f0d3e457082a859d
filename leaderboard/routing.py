"""WebSocket routes. The /ws/scoreboard consumer arrives with issue 4."""

websocket_urlpatterns: list = []
