"""The top 10 held in process memory for GET /api/scoreboard.

A copy is served while it is younger than LEADERBOARD_LOCAL_TTL and nothing said the board
changed: the Lua script that records a credit publishes on `leaderboard:{board}:changed`
whenever the top 10 may have moved, each process listens, and a credit made in this
process invalidates at once. Concurrent readers of a stale copy share one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from leaderboard.selectors import board_keys, leaderboard_top_json
from scoreboard_project import aio
from scoreboard_project.redis import RedisError

logger = logging.getLogger(__name__)
LISTEN_RETRY_SECONDS = 1.0

# Bumped when this process learns that the board changed; copies remember the value they saw.
_generation = 0


def local_board_invalidate() -> None:
    global _generation
    _generation += 1


class LocalBoard:
    def __init__(self) -> None:
        self.body: bytes | None = None
        self.generation = -1
        self.fetched = 0.0
        self.refreshing: asyncio.Task | None = None
        self.listener: asyncio.Task | None = None

    async def get(self) -> bytes:
        fresh = time.monotonic() - self.fetched < settings.LEADERBOARD_LOCAL_TTL
        if self.body is not None and fresh and self.generation == _generation:
            return self.body
        if self.refreshing is None:
            self.refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return await asyncio.shield(self.refreshing)

    async def _refresh(self) -> bytes:
        try:
            if self.listener is None and aio.async_redis() is not None:
                self.listener = asyncio.get_running_loop().create_task(self._listen())
            generation = _generation
            body = await leaderboard_top_json()
            self.body, self.generation, self.fetched = body, generation, time.monotonic()
            return body
        finally:
            self.refreshing = None

    async def _listen(self) -> None:
        channel = board_keys().changed
        while True:
            client = aio.async_redis()
            if client is None:
                return
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    local_board_invalidate()  # anything may have changed while not listening
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            local_board_invalidate()
            except (RedisError, OSError):
                logger.warning("board change listener lost Redis; retrying", exc_info=True)
                local_board_invalidate()
                await asyncio.sleep(LISTEN_RETRY_SECONDS)

    async def aclose(self) -> None:
        for task in (self.listener, self.refreshing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def board_json() -> bytes:
    """GET /api/scoreboard's body, from this loop's copy when it is fresh."""
    return await aio.loop_singleton("local-board", LocalBoard).get()
