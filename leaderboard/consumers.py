"""WebSocket /ws/scoreboard (API.md section 3)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http.request import validate_host

from accounts.authentication import user_from_bearer_async
from accounts.sessions import session_is_live_async
from accounts.tickets import ws_ticket_redeem
from leaderboard.boards import boards_enabled_async
from leaderboard.hub import hub
from leaderboard.models import GLOBAL_BOARD
from scoreboard_project import metrics
from scoreboard_project.errors import ApiError
from scoreboard_project.logs import request_id_start

logger = logging.getLogger("scoreboard.ws")

NOT_AUTHENTICATED, FORBIDDEN, HEARTBEAT_TIMEOUT, TOO_MANY = 4401, 4403, 4408, 4429
MESSAGE_TOO_BIG = 1009
PONG = json.dumps({"type": "PONG"})


def origin_allowed(origin: str) -> bool:
    """A browser's Origin must be listed in WS_ALLOWED_ORIGINS, or name an allowed host."""
    if settings.WS_ALLOWED_ORIGINS:
        return origin in settings.WS_ALLOWED_ORIGINS
    parts = urlsplit(origin)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and validate_host(parts.hostname, settings.ALLOWED_HOSTS)
    )


def error_message(code: str, message: str) -> str:
    return json.dumps({"type": "ERROR", "data": {"error_code": code, "message": message}})


class ScoreboardConsumer(AsyncWebsocketConsumer):
    """One live scoreboard: board broadcasts, and the player's own SCORE_UPDATE.

    A refused connection is accepted and closed at once with an application code, so that
    every client learns why (4401, 4403, 4429). Besides the global board, which every socket
    follows, a socket may follow one other board: {"type": "SUBSCRIBE", "board": code}.
    """

    user_id: int | None = None
    sid: str | None = None
    request_id = None
    board: str | None = None  # the other board followed (the hub sets it), None: global only
    # The followed board's updates held while its snapshot is read (None: not reading one).
    board_opening: list[str] | None = None

    async def connect(self) -> None:
        # One id for every line of this connection (this task), from X-Request-ID or new.
        self.request_id = request_id_start(dict(self.scope["headers"]).get(b"x-request-id"))
        self.loop = asyncio.get_running_loop()
        self.last_heard = self.last_pinged = time.monotonic()
        self.score_seq = self.board_seq = 0
        self.joined = False
        self.opening: list[tuple[str, object]] | None = []  # held until the snapshot is out
        headers = dict(self.scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin and not origin_allowed(origin):
            return await self.refuse(FORBIDDEN, "origin not allowed")
        try:
            identified = await self.identify(headers)
        except ApiError as error:
            return await self.refuse(NOT_AUTHENTICATED, error.message)
        if not identified:
            return await self.refuse(NOT_AUTHENTICATED, "authentication required")
        if self.user_id is not None and await suspended(self.user_id):
            return await self.refuse(FORBIDDEN, "account suspended")
        the_hub = hub()
        refusal = the_hub.refusal(self.user_id)
        if refusal:
            return await self.refuse(TOO_MANY, refusal)
        await self.accept()
        the_hub.join(self)
        self.joined = True
        if self.user_id is not None and self.channel_layer is not None:
            await self.channel_layer.group_add(f"user.{self.user_id}", self.channel_name)
        snapshot = await the_hub.snapshot()
        # The snapshot goes first; what arrived meanwhile follows it, in order.
        held, self.opening = self.opening or [], None
        self.send_board(snapshot)
        for kind, payload in held:
            self.send_board(payload) if kind == "board" else self.send_score(payload)
        metrics.ws_connect_counted("accepted")
        logger.info(
            "ws connect user=%s sockets=%d",
            self.user_id,
            len(the_hub.sockets),
            extra={"event": "ws_connect", "user_id": self.user_id, "client_ip": self.client_ip()},
        )

    async def identify(self, headers: dict[bytes, bytes]) -> bool:
        """Set user_id/sid from the Bearer header or the ticket; False if neither is there."""
        authorization = headers.get(b"authorization", b"")
        if authorization:
            user = await user_from_bearer_async(authorization)
            self.user_id, self.sid = user.id, user.sid
            return True
        ticket = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("ticket", [""])[0]
        if ticket:
            holder = await ws_ticket_redeem(ticket)
            if holder is None:
                raise NotATicket()
            if holder.user_id is not None and not await session_is_live_async(
                sid=holder.sid, user_id=holder.user_id
            ):
                raise NotATicket("The session behind this ticket has ended.")
            self.user_id, self.sid = holder.user_id, holder.sid
            return True
        return settings.WS_ALLOW_ANONYMOUS

    def client_ip(self) -> str | None:
        from scoreboard_project.clientip import client_address, ip_or_none

        peer = self.scope.get("client")
        if not peer:
            return None
        forwarded = dict(self.scope["headers"]).get(b"x-forwarded-for")
        return ip_or_none(client_address(peer[0], forwarded.decode("latin-1") if forwarded else None))

    async def refuse(self, code: int, reason: str) -> None:
        metrics.ws_connect_counted(str(code))
        logger.info(
            "ws refused code=%s reason=%s",
            code,
            reason,
            extra={
                "event": "ws_refused",
                "user_id": self.user_id,
                "code": code,
                "reason": reason,
                "client_ip": self.client_ip(),
            },
        )
        await self.accept()
        await self.close(code=code, reason=reason)

    async def close(self, code=None, reason=None) -> None:
        """Close, and stop receiving broadcasts at once rather than at the disconnect."""
        if self.joined:
            hub().leave(self)
        await super().close(code=code, reason=reason)

    async def disconnect(self, code) -> None:
        if self.joined:
            hub().leave(self)
            if self.user_id is not None and self.channel_layer is not None:
                await self.channel_layer.group_discard(f"user.{self.user_id}", self.channel_name)
            logger.info(
                "ws disconnect user=%s code=%s",
                self.user_id,
                code,
                extra={"event": "ws_disconnect", "user_id": self.user_id, "code": code},
            )
        if self.request_id is not None:
            self.request_id.finish()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        self.last_heard = time.monotonic()
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_MESSAGE_BYTES:
            return await self.close(code=MESSAGE_TOO_BIG)
        try:
            message = json.loads(text_data) if text_data is not None else None
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            message = kind = None
        if kind == "PING":
            metrics.WS_PONG_SENT.inc()
            await self.send(text_data=PONG)
        elif kind == "SUBSCRIBE" and isinstance(code := message.get("board"), str) and code:
            await self.subscribe(code)
        elif kind != "PONG":  # a PONG answers the server's PING: nothing to say back
            metrics.WS_ERROR_SENT.inc()
            await self.send(
                text_data=error_message(
                    "INVALID_MESSAGE", 'expected {"type": "PING"} or {"type": "SUBSCRIBE", "board": "<code>"}'
                )
            )

    async def subscribe(self, code: str) -> None:
        """Follow `code` besides the global board (replacing the board followed so far), and
        answer with its snapshot; "global" returns to the global board alone."""
        the_hub = hub()
        if code == GLOBAL_BOARD:
            the_hub.follow(self, None)
            self.send_board(await the_hub.snapshot(board=GLOBAL_BOARD))
            return
        if code not in await boards_enabled_async():
            metrics.WS_ERROR_SENT.inc()
            await self.send(text_data=error_message("NOT_FOUND", f"No enabled board {code[:64]!r}."))
            return
        the_hub.follow(self, code)
        self.board_opening = []  # updates of this board wait for its snapshot
        try:
            snapshot = await the_hub.board_snapshot(code)
        except ApiError as error:
            the_hub.follow(self, None)
            metrics.WS_ERROR_SENT.inc()
            await self.send(text_data=error_message(error.code, error.message))
            return
        finally:
            held, self.board_opening = self.board_opening, None
        if self.board != code:
            return  # left meanwhile (closed)
        self.send_board(snapshot)
        for data in held:
            self.send_board(data)

    # Called by the hub, on this loop, with the board's data encoded once for every socket.
    def board_text(self, data: str) -> str | None:
        """The LEADERBOARD_UPDATE text for this socket, or None while its snapshot is read."""
        if self.opening is not None:
            self.opening.append(("board", data))
            return None
        self.board_seq += 1
        return f'{{"type":"LEADERBOARD_UPDATE","seq":{self.board_seq},' + data

    def followed_text(self, code: str, data: str) -> str | None:
        """board_text for the other board this socket follows."""
        if self.board != code:
            return None
        if self.board_opening is not None:
            self.board_opening.append(data)
            return None
        return self.board_text(data)

    def deliver_score(self, data: dict) -> None:
        if self.opening is not None:
            self.opening.append(("score", data))
        else:
            self.send_score(data)

    def send_board(self, data: str) -> None:
        metrics.WS_BOARD_SENT.inc()
        self.board_seq += 1
        self.send_text(f'{{"type":"LEADERBOARD_UPDATE","seq":{self.board_seq},' + data)

    async def send_now(self, text: str) -> None:
        """Write at once (no task): the hub's fan-out awaits this for socket after socket."""
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except Exception:  # the peer is gone; disconnect() cleans up
            logger.debug("ws send to a closed socket", exc_info=True)

    def send_score(self, data: dict) -> None:
        metrics.WS_SCORE_SENT.inc()
        self.score_seq += 1
        self.send_text(json.dumps({"type": "SCORE_UPDATE", "seq": self.score_seq, "data": data}))

    def send_text(self, text: str) -> None:
        """A message outside the fan-out (snapshot, score update, PING): its own task."""
        self.loop.create_task(self.send_now(text))

    def end(self, code: int) -> None:
        self.loop.create_task(self.close(code=code))

    async def session_close(self, event) -> None:
        """Channel-layer event: the player's session (or every session) ended."""
        sids = event.get("sids")
        if sids is None or self.sid in sids:
            await self.close(code=event.get("code", NOT_AUTHENTICATED))


async def suspended(user_id: int) -> bool:
    """Is a ban in force? Redis holds bans; the database answers without it."""
    from antifraud.services import ban_in_force, ban_key
    from scoreboard_project import aio

    client = aio.async_redis()
    if client is not None:
        try:
            return bool(await client.exists(ban_key(user_id)))
        except Exception:  # a dead Redis: ask the database
            logger.warning("redis unreachable for the ban check; using the database")
    return await aio.db_call(ban_in_force)(user_id=user_id) is not None


class NotATicket(ApiError):
    status, code, default_message = 401, "UNAUTHORIZED", "The ticket is unknown, used or expired."
