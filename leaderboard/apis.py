from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from antifraud.apis import StaffApi, staff_schema
from leaderboard.board import board_is_stale, board_json
from leaderboard.board_reads import board_around_read, board_player_read, board_read, boards_list
from leaderboard.serializers import (
    BoardAroundOutput,
    BoardDefinition,
    BoardListOutput,
    BoardPageOutput,
    BoardPlayerOutput,
    ScoreboardOutput,
)
from scoreboard_project import aio
from scoreboard_project.errors import NotFound
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


AT = "2026-12-04T12:00:00.123456Z"
ENTRY = {"rank": 1, "user_id": 7, "username": "ada", "score": 420, "last_updated": AT}
PERIOD = {
    "key": "2026-W49",
    "starts_at": "2026-11-30T00:00:00.000000Z",
    "ends_at": "2026-12-07T00:00:00.000000Z",
}
BOARD = {
    "code": "weekly",
    "title": "This week",
    "action_types": [],
    "operator": "sum",
    "order": "desc",
    "window": "weekly",
    "time_zone": "UTC",
    "starts_at": None,
    "ends_at": None,
    "tie_policy": "shared",
    "period": PERIOD,
}
PERIOD_PARAM = OpenApiParameter(
    "period",
    OpenApiTypes.STR,
    description="current (default), previous, or a period's key (2026-12-04, 2026-W49, 2026-12, event, all)",
)


def _query(request) -> dict[str, list[str]]:
    return {name: request.query_params.getlist(name) for name in request.query_params}


def _public(summary: str, description: str, output, example: dict, *, statuses=(400, 404, 503), **extra):
    return extend_schema(
        tags=["boards"],
        summary=summary,
        description=description,
        responses={200: output, **error_responses(*statuses)},
        parameters=[*extra.pop("parameters", []), *error_headers(*statuses)],
        examples=[OpenApiExample("answer", value=example, response_only=True, status_codes=["200"])],
        **extra,
    )


class BoardListApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @_public(
        "Every enabled board",
        "Each board's definition and its current period. No authentication.",
        BoardListOutput,
        {"boards": [BOARD]},
        statuses=(503,),
        operation_id="boards",
        auth=[],
    )
    def get(self, request):
        return Response(aio.run(boards_list()))


class BoardDetailApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @_public(
        "A board's standings, page by page",
        "The first `limit` entries (default 10, at most 100), or those after `cursor` (the "
        "`next_cursor` of the page before, stable while scores change). Ranks follow the "
        "board's tie policy. `global` is the board of GET /api/scoreboard. No authentication.",
        BoardPageOutput,
        {
            "board": "weekly",
            "period": PERIOD,
            "leaderboard": [ENTRY],
            "total_players": 1,
            "next_cursor": None,
        },
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100, default 10"),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="next_cursor of the page before"),
            PERIOD_PARAM,
        ],
        operation_id="board",
        auth=[],
    )
    def get(self, request, code: str):
        return Response(aio.run(board_read(code, _query(request))))


class BoardAroundApi(APIView):
    @_public(
        "The caller's place on a board",
        "The caller's entry and `radius` entries above and below it (default 5, at most 50); "
        "`player` is null when the caller is not on the board.",
        BoardAroundOutput,
        {"board": "weekly", "period": PERIOD, "player": ENTRY, "leaderboard": [ENTRY], "total_players": 1},
        statuses=(400, 401, 404, 503),
        parameters=[
            OpenApiParameter("radius", OpenApiTypes.INT, description="0 to 50, default 5"),
            PERIOD_PARAM,
        ],
        operation_id="board_around_me",
    )
    def get(self, request, code: str):
        return Response(aio.run(board_around_read(code, _query(request), user_id=request.user.id)))


class BoardPlayerApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @_public(
        "One player's place on a board",
        "404 when the player is not on the board in that period. No authentication.",
        BoardPlayerOutput,
        {"board": "weekly", "period": PERIOD, "player": ENTRY, "total_players": 1},
        parameters=[PERIOD_PARAM],
        operation_id="board_player",
        auth=[],
    )
    def get(self, request, code: str, player: str):
        return Response(aio.run(board_player_read(code, player, _query(request))))


DEFINITION = {**{key: value for key, value in BOARD.items() if key != "period"}, "enabled": True}
DEFINITION_OUT = {**DEFINITION, "created_at": AT, "updated_at": AT}


class BoardAdminListApi(StaffApi):
    permissions = {"GET": "leaderboard.view_board", "POST": "leaderboard.add_board"}

    @staff_schema(BoardDefinition(many=True), DEFINITION_OUT)
    def get(self, request):
        """Every board, enabled or not."""
        from leaderboard.models import Board

        return Response(BoardDefinition(Board.objects.all(), many=True).data)

    @staff_schema(
        BoardDefinition, DEFINITION_OUT, request=BoardDefinition, request_example=DEFINITION, status=201
    )
    def post(self, request):
        """Define a board; it is filled from the ledger at once (a task)."""
        from leaderboard.board_services import board_define

        serializer = BoardDefinition(data=request.data)
        serializer.is_valid(raise_exception=True)
        board = board_define(data=serializer.validated_data, by=request.user)
        return Response(BoardDefinition(board).data, status=201)


class BoardAdminDetailApi(StaffApi):
    permissions = {"GET": "leaderboard.view_board", "PATCH": "leaderboard.change_board"}

    def _board(self, code: str):
        from leaderboard.models import Board

        board = Board.objects.filter(code=code).first()
        if board is None:
            raise NotFound(f"No board {code!r}.")
        return board

    @staff_schema(BoardDefinition, DEFINITION_OUT)
    def get(self, request, code: str):
        """One board's definition."""
        return Response(BoardDefinition(self._board(code)).data)

    @staff_schema(BoardDefinition, DEFINITION_OUT, request=BoardDefinition, request_example={"title": "Week"})
    def patch(self, request, code: str):
        """Change a board (not its code); its live periods are rebuilt from the ledger."""
        from leaderboard.board_services import board_define

        board = self._board(code)
        serializer = BoardDefinition(board, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return Response(
            BoardDefinition(
                board_define(data=serializer.validated_data, instance=board, by=request.user)
            ).data
        )


class BoardAdminRebuildApi(StaffApi):
    permissions = {"POST": "leaderboard.change_board"}

    @staff_schema(None, {"rebuilt": {"weekly/2026-W49": 120}}, request=None)
    def post(self, request, code: str):
        """Rebuild a board's current and previous period from the ledger, now."""
        from leaderboard.board_services import boards_rebuild
        from leaderboard.models import Board

        if not Board.objects.filter(code=code, enabled=True).exists():
            raise NotFound(f"No enabled board {code!r}.")
        sizes = boards_rebuild(codes=[code])
        return Response({"rebuilt": {f"{board}/{period}": size for (board, period), size in sizes.items()}})
