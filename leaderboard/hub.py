"""The live sockets of one event loop, and what they are sent.

Board updates are coalesced: after a change, at most one LEADERBOARD_UPDATE per
WS_BROADCAST_INTERVAL, always ending on the latest state, and only when the top 10 really
differs from the previous broadcast. Each one is encoded once and the same text goes to
every socket. Heartbeats are one loop over the sockets, not a task per socket.

Every socket follows the global board; a socket may also follow one other board (SUBSCRIBE),
whose updates are coalesced the same way, per board, and carry the board's code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from leaderboard.board import board_versioned
from leaderboard.board_reads import board_read
from leaderboard.events import hubs, listen
from leaderboard.selectors import iso
from scoreboard_project import aio, metrics
from scoreboard_project.errors import ApiError

if TYPE_CHECKING:
    from leaderboard.consumers import ScoreboardConsumer

logger = logging.getLogger("scoreboard.ws")
PING = json.dumps({"type": "PING"})
FANOUT_CHUNK = 250
FANOUT_STALL_SECONDS = 2.0


def changed_ranks(before: list[dict] | None, after: list[dict]) -> list[int]:
    """1-based positions whose entry differs between two boards."""
    before = before or []
    return [
        position + 1
        for position in range(max(len(before), len(after)))
        if position >= len(before) or position >= len(after) or before[position] != after[position]
    ]


def board_data(entries: list[dict], changed: list[int], board: str | None = None) -> str:
    """The `"data": ...}` tail of a LEADERBOARD_UPDATE, encoded once for every socket; each
    socket puts its own `seq` in front (see ScoreboardConsumer.send_board). A board other
    than the global one's broadcasts (and every SUBSCRIBE answer) name their board."""
    data = {"leaderboard": entries, "changed_ranks": changed, "timestamp": iso(timezone.now())}
    if board is not None:
        data = {"board": board, **data}
    return '"data":' + json.dumps(data, separators=(",", ":")) + "}"


async def board_top(code: str) -> list[dict]:
    """The current top 10 of a board other than the global one (NotFound if not enabled)."""
    return (await board_read(code, {}))["leaderboard"]


class Feed:
    """A board other than the global one, followed by some of this loop's sockets: its last
    broadcast and its coalescing state, as the Hub keeps them for the global board."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.sockets: set[ScoreboardConsumer] = set()
        self.last_entries: list[dict] | None = None
        self.last_sent = 0.0
        self.dirty = False
        self.broadcaster: asyncio.Task | None = None


class Hub:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sockets: set[ScoreboardConsumer] = set()
        self.by_user: dict[int, set[ScoreboardConsumer]] = {}
        self.last_entries: list[dict] | None = None
        self.last_sent = 0.0
        self.dirty = False
        self.broadcaster: asyncio.Task | None = None
        self.feeds: dict[str, Feed] = {}  # followed boards other than the global one, by code
        self.heartbeat = self.loop.create_task(self._heartbeat(), name="ws-heartbeat")
        hubs[self.loop] = self
        listen()

    def refusal(self, user_id: int | None) -> str | None:
        """Why a new socket may not join, or None."""
        if len(self.sockets) >= settings.WS_CONNECTION_LIMIT:
            return "too many connections on this server"
        if user_id is not None and len(self.by_user.get(user_id, ())) >= settings.WS_MAX_CONNECTIONS_PER_USER:
            return "too many connections for this player"
        return None

    def join(self, socket: ScoreboardConsumer) -> None:
        if socket not in self.sockets:
            metrics.WS_CONNECTIONS.inc()
        self.sockets.add(socket)
        if socket.user_id is not None:
            self.by_user.setdefault(socket.user_id, set()).add(socket)

    def leave(self, socket: ScoreboardConsumer) -> None:
        if socket in self.sockets:
            metrics.WS_CONNECTIONS.dec()
        self.sockets.discard(socket)
        self.follow(socket, None)
        mine = self.by_user.get(socket.user_id)
        if mine is not None:
            mine.discard(socket)
            if not mine:
                del self.by_user[socket.user_id]

    async def snapshot(self, board: str | None = None) -> str:
        """The current board as an opening LEADERBOARD_UPDATE (every position is new); named
        `board` when it answers a SUBSCRIBE."""
        body, _version = await board_versioned()
        entries = json.loads(body)["leaderboard"]
        if self.last_entries is None:
            self.last_entries = entries  # the first socket's snapshot is the baseline
        return board_data(entries, list(range(1, len(entries) + 1)), board)

    def follow(self, socket: ScoreboardConsumer, code: str | None) -> None:
        """Make `code` the one extra board the socket follows (None: the global board only).
        A board's state is dropped with its last follower: a new one starts from its snapshot."""
        previous = socket.board
        if previous == code:
            return
        feed = self.feeds.get(previous) if previous is not None else None
        if feed is not None:
            feed.sockets.discard(socket)
            if not feed.sockets:
                del self.feeds[previous]  # its broadcaster, if any, ends on its own
        socket.board = code
        if code is not None:
            self.feeds.setdefault(code, Feed(code)).sockets.add(socket)

    async def board_snapshot(self, code: str) -> str:
        """A followed board as a SUBSCRIBE answer (every position is new)."""
        entries = await board_top(code)
        feed = self.feeds.get(code)
        if feed is not None and feed.last_entries is None:
            feed.last_entries = entries  # the first follower's snapshot is the baseline
        return board_data(entries, list(range(1, len(entries) + 1)), code)

    def changed_here(self) -> None:
        """Something changed in this process (no Redis): the global board and every followed one."""
        self.board_changed()
        if self.feeds:
            self.boards_changed(None)

    def boards_changed(self, codes: list[str] | None) -> None:
        """The top 10 of these boards (None: of any board) may have changed."""
        for code in list(self.feeds) if codes is None else codes:
            feed = self.feeds.get(code)
            if feed is None:
                continue  # nobody here follows it (the global board has its own channel)
            feed.dirty = True
            if feed.broadcaster is None or feed.broadcaster.done():
                feed.broadcaster = self.loop.create_task(
                    self._while_dirty(feed, lambda feed=feed: self._feed_broadcast(feed), feed.code)
                )

    async def _feed_broadcast(self, feed: Feed) -> None:
        entries = await board_top(feed.code)
        if entries == feed.last_entries or not feed.sockets:
            return
        data = board_data(entries, changed_ranks(feed.last_entries, entries), feed.code)
        feed.last_entries = entries
        await self._fan_out(
            [
                (socket, text)
                for socket in list(feed.sockets)
                if (text := socket.followed_text(feed.code, data))
            ]
        )

    def board_changed(self) -> None:
        self.dirty = True
        if self.sockets and (self.broadcaster is None or self.broadcaster.done()):
            self.broadcaster = self.loop.create_task(self._while_dirty(self, self._broadcast, "global"))

    async def _while_dirty(self, state: Hub | Feed, broadcast, code: str) -> None:
        """Broadcast a board while `state` (this hub for the global board, or a Feed) is
        dirty and followed: at most one per WS_BROADCAST_INTERVAL, the changes meanwhile
        joining it."""
        while state.dirty and state.sockets:
            wait = state.last_sent + settings.WS_BROADCAST_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # changes meanwhile join this broadcast
            state.dirty = False
            state.last_sent = time.monotonic()
            try:
                await broadcast()
            except ApiError as error:  # disabled since it was followed: its followers keep it
                logger.info("board %s not broadcast: %s", code, error.message)
            except Exception:
                logger.exception("board %s broadcast failed", code)

    async def _broadcast(self) -> None:
        body, _version = await board_versioned()
        entries = json.loads(body)["leaderboard"]
        if entries == self.last_entries:
            return
        data = board_data(entries, changed_ranks(self.last_entries, entries))
        self.last_entries = entries
        await self._fan_out(
            [(socket, text) for socket in list(self.sockets) if (text := socket.board_text(data))]
        )

    async def _fan_out(self, outgoing: list[tuple[ScoreboardConsumer, str]]) -> None:
        """Chunks of sockets, each written in sequence by one task: no task per socket (their
        creation and the garbage they leave cost more than the writes), and a stalled peer
        holds up only its chunk, and only for FANOUT_STALL_SECONDS before it is dropped."""
        await asyncio.gather(
            *(
                self._send_chunk(outgoing[start : start + FANOUT_CHUNK])
                for start in range(0, len(outgoing), FANOUT_CHUNK)
            )
        )

    async def _send_chunk(self, pairs: list[tuple[ScoreboardConsumer, str]]) -> None:
        metrics.WS_BOARD_SENT.inc(len(pairs))  # once per chunk: no update per socket
        position = 0
        while position < len(pairs):
            try:
                async with asyncio.timeout(FANOUT_STALL_SECONDS):
                    while position < len(pairs):
                        socket, text = pairs[position]
                        position += 1
                        await socket.send_now(text)
            except TimeoutError:
                stalled = pairs[position - 1][0]
                logger.warning("ws peer too slow; dropping user=%s", stalled.user_id)
                stalled.end(1013)

    def score_changed(self, user_id: int, new_score: int, rank: int, points: int) -> None:
        for socket in list(self.by_user.get(user_id, ())):
            socket.deliver_score({"new_score": new_score, "rank": rank, "points_gained": points})

    def close_sessions(self, user_id: int, sids: list[str] | None, code: int = 4401) -> None:
        """Close the sockets of ended sessions (all of the player's when sids is None)."""
        for socket in list(self.by_user.get(user_id, ())):
            if sids is None or socket.sid in sids:
                socket.end(code)

    def heartbeat_round(self, now: float, interval: float) -> list[ScoreboardConsumer]:
        """Close the sockets silent for two intervals despite a PING, ping those not pinged
        for an interval; returns the players' sockets pinged. A socket never pinged since it
        last spoke gets its PING first, however late this round runs."""
        pinged = []
        pings = 0
        for socket in list(self.sockets):
            if socket.last_heard < now - 2 * interval and socket.last_pinged > socket.last_heard:
                socket.end(4408)
            elif socket.last_pinged < now - interval:
                socket.last_pinged = now
                socket.send_text(PING)
                pings += 1
                if socket.user_id is not None:
                    pinged.append(socket)
        if pings:
            metrics.WS_PING_SENT.inc(pings)
        return pinged

    async def _heartbeat(self) -> None:
        """Ping each socket every WS_HEARTBEAT_INTERVAL; close it after two silent ones.

        Each round also re-checks the sessions of the player sockets it pings (one MGET), so a
        socket whose session ended is closed even if the news of the logout was lost.
        """
        while True:
            interval = settings.WS_HEARTBEAT_INTERVAL
            await asyncio.sleep(min(1.0, interval))
            pinged = self.heartbeat_round(time.monotonic(), interval)
            if pinged:
                try:
                    await self._close_ended_sessions(pinged)
                except Exception:  # Redis down: the next round tries again
                    logger.warning("session re-check failed", exc_info=True)

    async def _close_ended_sessions(self, sockets: list[ScoreboardConsumer]) -> None:
        from accounts.sessions import session_cache_key, session_state_from_cache

        client = aio.async_redis()
        if client is None:
            return  # without Redis, logouts reach the hub directly
        values = await client.mget([session_cache_key(socket.sid) for socket in sockets])
        for socket, value in zip(sockets, values, strict=True):
            if session_state_from_cache(value, user_id=socket.user_id) is False:
                socket.end(4401)

    async def aclose(self) -> None:
        feeds = [feed.broadcaster for feed in self.feeds.values()]
        for task in (self.heartbeat, self.broadcaster, *feeds):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def hub() -> Hub:
    return aio.loop_singleton("ws-hub", Hub)
