from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from leaderboard.board import board_is_stale, board_json
from leaderboard.serializers import ScoreboardOutput
from scoreboard_project import aio
from scoreboard_project.openapi import error_headers, error_responses


class ScoreboardApi(APIView):
    """GET /api/scoreboard: the top 10, served from the cache as stored bytes."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="scoreboard",
        summary="The top 10",
        description="API.md section 2. At most 10 entries by score descending; equal scores by who "
        "reached the score first, then `user_id`. `rank` is competition ranking (1, 2, 2, 4). "
        "Banned and inactive players appear nowhere, `total_players` counts the others with at "
        "least one accepted action. Reflects every accepted update within one second. No "
        "authentication. Served by the lean ASGI door; documented through this DRF twin.",
        responses={
            200: OpenApiResponse(ScoreboardOutput, description="The board."),
            **error_responses(503),
        },
        parameters=error_headers(503),
        examples=[
            OpenApiExample(
                "board",
                response_only=True,
                status_codes=["200"],
                value={
                    "leaderboard": [
                        {
                            "rank": 1,
                            "user_id": 7,
                            "username": "ada",
                            "score": 9100,
                            "last_updated": "2026-11-29T12:00:00.123456Z",
                        },
                        {
                            "rank": 2,
                            "user_id": 9,
                            "username": "bob",
                            "score": 8800,
                            "last_updated": "2026-11-29T11:58:10.500000Z",
                        },
                    ],
                    "last_updated": "2026-11-29T12:00:00.123456Z",
                    "total_players": 10234,
                },
            )
        ],
        auth=[],
    )
    def get(self, request):
        body = aio.run(board_json())
        response = HttpResponse(body, content_type="application/json")
        if board_is_stale(body):
            response["X-Scoreboard-Stale"] = "true"
        return response
