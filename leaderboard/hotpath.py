"""GET /api/scoreboard and the board reads on the lean async door (see
scoreboard_project.hotpath)."""

from urllib.parse import parse_qs

from accounts.authentication import user_from_bearer_async
from leaderboard.board import board_is_stale, board_json
from leaderboard.board_reads import board_around_read, board_player_read, board_read_body, boards_list
from scoreboard_project.errors import NotFound
from scoreboard_project.hotpath import HotRequest, HotResponse, json_response

STALE_HEADERS = ((b"x-scoreboard-stale", b"true"),)
BOARDS_PREFIX = "/api/boards"


async def scoreboard_endpoint(request: HotRequest) -> HotResponse:
    body = await board_json()
    return HotResponse(200, body, STALE_HEADERS if board_is_stale(body) else ())


async def boards_endpoint(request: HotRequest) -> HotResponse:
    """GET /api/boards, /api/boards/{code}, .../around-me, .../players/{id}."""
    scope = request.scope
    parts = scope["path"][len(BOARDS_PREFIX) :].split("/")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if parts == [""]:
        return json_response(200, await boards_list())
    if len(parts) == 2 and parts[1]:
        scope["route_template"] = "/api/boards/{code}"
        return HotResponse(200, await board_read_body(parts[1], query))
    if len(parts) == 3 and parts[1] and parts[2] == "around-me":
        scope["route_template"] = "/api/boards/{code}/around-me"
        user = await user_from_bearer_async(request.header(b"authorization"))
        return json_response(200, await board_around_read(parts[1], query, user_id=user.id))
    if len(parts) == 4 and parts[1] and parts[2] == "players":
        scope["route_template"] = "/api/boards/{code}/players/{player}"
        return json_response(200, await board_player_read(parts[1], parts[3], query))
    scope["route_template"] = "unmatched"
    raise NotFound("The requested resource was not found.")
