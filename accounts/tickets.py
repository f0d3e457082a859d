"""Single-use WebSocket tickets: browsers cannot set headers on a WebSocket.

A ticket is a random string kept WS_TICKET_SECONDS in Redis (the Django cache without it);
redeeming it deletes it. A ticket made without a token is read-only (board broadcasts only).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from scoreboard_project import aio
from scoreboard_project.redis import redis_client

READ_ONLY = "-"


@dataclass(frozen=True, slots=True)
class TicketHolder:
    """Who redeemed a ticket: a player's session, or nobody (read-only)."""

    user_id: int | None
    sid: str | None


def _key(ticket: str) -> str:
    return f"wsticket:{ticket}"


def ws_ticket_issue(*, user_id: int | None, sid: str | None) -> str:
    """Issue a ticket for a player's session, or a read-only one."""
    ticket = secrets.token_urlsafe(24)
    value = READ_ONLY if user_id is None else f"{user_id}:{sid}"
    client = redis_client()
    if client is not None:
        client.set(_key(ticket), value, ex=settings.WS_TICKET_SECONDS)
    else:
        cache.set(_key(ticket), value, settings.WS_TICKET_SECONDS)
    return ticket


async def ws_ticket_redeem(ticket: str) -> TicketHolder | None:
    """Use a ticket up (GETDEL): its holder, or None if unknown, used or expired."""
    if not ticket or len(ticket) > 64:
        return None
    client = aio.async_redis()
    if client is not None:
        value = await client.getdel(_key(ticket))
        value = value.decode() if value is not None else None
    else:
        value = cache.get(_key(ticket))
        if value is not None and not cache.delete(_key(ticket)):
            value = None  # another connection used it first
    if value is None:
        return None
    if value == READ_ONLY:
        return TicketHolder(None, None)
    user_id, sid = value.split(":", 1)
    return TicketHolder(int(user_id), sid)
