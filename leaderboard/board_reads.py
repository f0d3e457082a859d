"""The board read endpoints' logic, shared by the lean async door and the DRF twins that
document them: parameters checked here, answers from leaderboard.board_selectors."""

from __future__ import annotations

import json
import re
import time

from django.conf import settings

from leaderboard import board as local_board
from leaderboard.board_selectors import (
    MAX_LIMIT,
    MAX_RADIUS,
    board_around,
    board_page,
    board_player,
    period_resolve,
)
from leaderboard.boards import BoardDef, boards_enabled_async
from leaderboard.events import listen
from scoreboard_project.errors import InvalidAction, NotFound
from scoreboard_project.hotpath import json_bytes

DEFAULT_LIMIT = 10
DEFAULT_RADIUS = 5
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
    return json.loads(await board_read_body(code, query))


# A page from the top is the same for every reader: its body is kept per process, keyed by
# the board's definition, the period and the limit, while younger than LEADERBOARD_LOCAL_TTL
# and while no change of that board was heard (the record script announces a change of a
# board's top 10; a change further down shows within the TTL).
_tops: dict[tuple[BoardDef, str, int], tuple[float, int, int, bytes]] = {}
_changes: dict[str, int] = {}


def board_pages_invalidate(codes: list[str] | None) -> None:
    """These boards changed (None: any of them)."""
    if codes is None:
        _tops.clear()
        return
    for code in codes:
        _changes[code] = _changes.get(code, 0) + 1


async def board_read_body(code: str, query: dict[str, list[str]]) -> bytes:
    """GET /api/boards/{code} as JSON bytes."""
    params = _single(query)
    board = await _board(code)
    limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    period = period_resolve(board, params.get("period"))
    cursor = params.get("cursor") or None
    if cursor is not None:
        return json_bytes(await board_page(board=board, period=period, limit=limit, cursor=cursor))
    key = (board, period.key, limit)
    found = _tops.get(key)
    now = time.monotonic()
    generation, changes = local_board.generation(), _changes.get(code, 0)
    if (
        found is not None
        and now - found[0] < settings.LEADERBOARD_LOCAL_TTL
        and found[1:3] == (generation, changes)
    ):
        return found[3]
    listen()  # this loop hears the changes from now on
    body = json_bytes(await board_page(board=board, period=period, limit=limit, cursor=None))
    if len(_tops) > 10_000:
        _tops.clear()
    _tops[key] = (now, generation, changes, body)
    return body


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
