"""GET /api/scoreboard on the lean async door (see scoreboard_project.hotpath)."""

from leaderboard.board import board_json
from scoreboard_project.hotpath import HotRequest, HotResponse


async def scoreboard_endpoint(request: HotRequest) -> HotResponse:
    return HotResponse(200, await board_json())
