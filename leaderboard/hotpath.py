"""GET /api/scoreboard on the lean async door (see scoreboard_project.hotpath)."""

from leaderboard.board import board_is_stale, board_json
from scoreboard_project.hotpath import HotRequest, HotResponse

STALE_HEADERS = ((b"x-scoreboard-stale", b"true"),)


async def scoreboard_endpoint(request: HotRequest) -> HotResponse:
    body = await board_json()
    return HotResponse(200, body, STALE_HEADERS if board_is_stale(body) else ())
