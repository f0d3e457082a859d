"""The top 10 held in process memory for GET /api/scoreboard.

A copy is served while it is younger than LEADERBOARD_LOCAL_TTL and nothing said the board
changed (leaderboard.events hears the changes of every process). Concurrent readers of a
stale copy share one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from leaderboard.selectors import leaderboard_top_versioned
from scoreboard_project import aio, metrics
from scoreboard_project.errors import database_unavailable

logger = logging.getLogger(__name__)

# A stale board (the database unreachable, Redis too or its cache cold) carries this field.
STALE_TAIL = b', "stale": true}'
STALE_RETRY_SECONDS = 1.0


def stale(body: bytes) -> bytes:
    return body if body.endswith(STALE_TAIL) else body[:-1] + STALE_TAIL


def board_is_stale(body: bytes) -> bool:
    return body.endswith(STALE_TAIL)


# Bumped when this process learns that the board changed; copies remember the value they saw.
_generation = 0


def local_board_invalidate() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    """Changes this process has heard of so far (copies of boards compare it)."""
    return _generation


class LocalBoard:
    def __init__(self) -> None:
        self.body: bytes | None = None
        self.version = 0
        self.generation = -1
        self.fetched = 0.0
        self.refreshing: asyncio.Task | None = None
        self.refreshing_generation = -1
        self.stale_until = 0.0

    async def get(self) -> tuple[bytes, int]:
        """The body of GET /api/scoreboard and the board's version."""
        generation = _generation
        if self.body is not None and self.stale_until > time.monotonic():
            return stale(self.body), self.version
        fresh = time.monotonic() - self.fetched < settings.LEADERBOARD_LOCAL_TTL
        if self.body is not None and fresh and self.generation == generation:
            metrics.BOARD_PROCESS_HIT.inc()
            return self.body, self.version
        metrics.BOARD_PROCESS_MISS.inc()
        task = self.refreshing
        # Join a refresh only if it started after the latest change; else start a newer one.
        if task is None or self.refreshing_generation != generation:
            task = asyncio.get_running_loop().create_task(self._refresh(generation))
            self.refreshing, self.refreshing_generation = task, generation
        return await asyncio.shield(task)

    async def _refresh(self, generation: int) -> tuple[bytes, int]:
        from leaderboard.events import listen

        try:
            listen()
            try:
                body, version = await leaderboard_top_versioned()
            except Exception as error:
                if self.body is None or not database_unavailable(error):
                    raise
                # No database (and no Redis cache): the last board this process saw, marked
                # stale, for a second before the next attempt.
                logger.warning("database unreachable (%s): serving the last board, stale", error)
                self.stale_until = time.monotonic() + STALE_RETRY_SECONDS
                return stale(self.body), self.version
            self.stale_until = 0.0
            # Without Redis the version is this process's count of changes.
            version = generation if version is None else version
            if generation >= self.generation:  # a slower, older refresh never overwrites
                self.body, self.version = body, version
                self.generation, self.fetched = generation, time.monotonic()
            return body, version
        finally:
            if self.refreshing is asyncio.current_task():
                self.refreshing = None

    async def aclose(self) -> None:
        if self.refreshing is not None:
            self.refreshing.cancel()
            await asyncio.gather(self.refreshing, return_exceptions=True)


async def board_json() -> bytes:
    """GET /api/scoreboard's body, from this loop's copy when it is fresh."""
    body, _version = await board_versioned()
    return body


async def board_versioned() -> tuple[bytes, int]:
    return await aio.loop_singleton("local-board", LocalBoard).get()
