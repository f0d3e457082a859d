"""The board read endpoints' logic, shared by the lean async door and the DRF twins that
document them: parameters checked here, answers from leaderboard.board_selectors."""

from __future__ import annotations

import re

from leaderboard.board_selectors import (
    MAX_LIMIT,
    MAX_RADIUS,
    board_around,
    board_page,
    board_player,
    period_resolve,
)
from leaderboard.boards import BoardDef, boards_enabled_async
from scoreboard_project.errors import InvalidAction, NotFound

DEFAULT_LIMIT = 10
DEFAULT_RADIUS = 5
KNOWN = {
    "list": set(),
    "page": {"limit", "cursor", "period"},
    "around": {"radius", "period"},
    "player": {"period"},
}
PLAYER_ID = re.compile(r"^[1-9][0-9]{0,17}$")


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,6}", raw) or not low <= int(raw) <= high:
        raise InvalidAction(
            f"{name}: must be an integer from {low} to {high}",
            details={name: f"an integer from {low} to {high}"},
        )
    return int(raw)


def _single(query: dict[str, list[str]]) -> dict[str, str]:
    params = {}
    for name, values in query.items():
        if len(values) != 1:
            raise InvalidAction(f"{name}: give it once", details={name: "repeated"})
        params[name] = values[0]
    return params


async def _board(code: str) -> BoardDef:
    board = (await boards_enabled_async()).get(code)
    if board is None:
        raise NotFound(f"No enabled board {code!r}.")
    return board


async def boards_list() -> dict:
    boards = await boards_enabled_async()
    return {"boards": [board.as_dict() for board in sorted(boards.values(), key=lambda b: b.code)]}


async def board_read(code: str, query: dict[str, list[str]]) -> dict:
    params = _single(query)
    board = await _board(code)
    limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    period = period_resolve(board, params.get("period"))
    return await board_page(board=board, period=period, limit=limit, cursor=params.get("cursor") or None)


async def board_around_read(code: str, query: dict[str, list[str]], *, user_id: int) -> dict:
    params = _single(query)
    board = await _board(code)
    radius = _int_param(params, "radius", DEFAULT_RADIUS, 0, MAX_RADIUS)
    period = period_resolve(board, params.get("period"))
    return await board_around(board=board, period=period, user_id=user_id, radius=radius)


async def board_player_read(code: str, player: str, query: dict[str, list[str]]) -> dict:
    params = _single(query)
    board = await _board(code)
    if not PLAYER_ID.match(player):
        raise NotFound("No such player.")
    period = period_resolve(board, params.get("period"))
    return await board_player(board=board, period=period, user_id=int(player))
