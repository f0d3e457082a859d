from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from leaderboard.board import board_is_stale, board_json
from leaderboard.serializers import ScoreboardOutput
from scoreboard_project import aio


class ScoreboardApi(APIView):
    """GET /api/scoreboard: the top 10, served from the cache as stored bytes."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: ScoreboardOutput}, auth=[])
    def get(self, request):
        body = aio.run(board_json())
        response = HttpResponse(body, content_type="application/json")
        if board_is_stale(body):
            response["X-Scoreboard-Stale"] = "true"
        return response
