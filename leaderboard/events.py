"""News of changes, for this process's board copy and its live sockets.

With Redis, every process hears every change through pub/sub: one listener per event loop
subscribes to the board's `changed` and `scores` channels and to the boards channel (the record
script publishes on all three; the boards channel carries the codes of the other boards whose
top 10 changed). Without Redis, this process is the whole service and is told directly.
"""

from __future__ import annotations

import asyncio
import logging
from weakref import WeakKeyDictionary

from leaderboard.board import local_board_invalidate
from leaderboard.boards import boards_channel
from leaderboard.selectors import board_keys
from scoreboard_project import aio
from scoreboard_project.redis import RedisError

logger = logging.getLogger(__name__)
LISTEN_RETRY_SECONDS = 1.0

# The hub of live sockets of each event loop that has one (see leaderboard.hub).
hubs: WeakKeyDictionary = WeakKeyDictionary()


def _tell_hubs(method: str, *args) -> None:
    for loop, hub in list(hubs.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(getattr(hub, method), *args)


def board_changed_here() -> None:
    """The board changed in this process (no Redis): refresh the copy, tell the sockets (of
    the global board and of every board followed)."""
    local_board_invalidate()
    _tell_hubs("changed_here")


def score_changed_here(*, user_id: int, new_score: int, rank: int, points: int) -> None:
    """A player's score changed in this process (no Redis): tell that player's sockets."""
    _tell_hubs("score_changed", user_id, new_score, rank, points)


def parse_score_events(data: bytes) -> list[tuple[int, int, int, int]]:
    """The items of one scores message: (user_id, new_score, rank, points_gained)."""
    events = []
    for item in data.split():
        user_id, new_score, rank, points = (int(part) for part in item.split(b":"))
        events.append((user_id, new_score, rank, points))
    return events


class Listener:
    """One Redis subscription per event loop, dispatching to that loop's board and hub."""

    def __init__(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="board-listener")

    async def _run(self) -> None:
        keys = board_keys()
        boards = boards_channel()
        loop = asyncio.get_running_loop()
        while True:
            client = aio.async_redis()
            if client is None:
                return
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(keys.changed, keys.scores, boards)
                    self._board_changed(loop)  # anything may have changed while not listening
                    self._boards_changed(loop, None)
                    async for message in pubsub.listen():
                        if message["type"] != "message":
                            continue
                        channel = message["channel"].decode()
                        if channel == keys.changed:
                            self._board_changed(loop)
                        elif channel == boards:
                            self._boards_changed(loop, message["data"])
                        else:
                            self._score_changed(loop, message["data"])
            except (RedisError, OSError):
                logger.warning("change listener lost Redis; retrying", exc_info=True)
                local_board_invalidate()
                await asyncio.sleep(LISTEN_RETRY_SECONDS)

    @staticmethod
    def _board_changed(loop) -> None:
        local_board_invalidate()
        hub = hubs.get(loop)
        if hub is not None:
            hub.board_changed()

    @staticmethod
    def _boards_changed(loop, data: bytes | None) -> None:
        """`data`: the codes of the boards whose top 10 changed, space-separated (None: any)."""
        from leaderboard.board_reads import board_pages_invalidate

        codes = None if data is None else data.decode().split()
        board_pages_invalidate(codes)
        hub = hubs.get(loop)
        if hub is not None and hub.feeds:  # no socket here follows another board: nothing to do
            hub.boards_changed(codes)

    @staticmethod
    def _score_changed(loop, data: bytes) -> None:
        hub = hubs.get(loop)
        if hub is not None and hub.by_user:  # no player socket here: nothing to parse
            for event in parse_score_events(data):
                hub.score_changed(*event)

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def listen() -> None:
    """Make sure this event loop hears the service's changes (with Redis)."""
    if aio.async_redis() is not None:
        aio.loop_singleton("change-listener", Listener)


def sessions_ended(*, user_id: int, sids: list[str] | None, code: int = 4401) -> None:
    """Close the live sockets of ended sessions, in every process (all of the player's
    sockets when sids is None; 4401, or 4403 for a ban). Through the channel layer
    (channels-redis) with Redis."""
    from django.conf import settings

    if not settings.REDIS_URL:
        _tell_hubs("close_sessions", user_id, sids, code)
        return
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    message = {"type": "session.close", "sids": sids, "code": code}
    try:
        aio.run(layer.group_send(f"user.{user_id}", message), timeout=5)
    except Exception:  # the hub's heartbeat re-checks sessions and closes these sockets
        logger.warning(
            "could not tell the sockets of user %s that their session ended", user_id, exc_info=True
        )
