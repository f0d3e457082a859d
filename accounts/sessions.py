"""Session liveness: Redis answers on the hot path, the database is the source of truth."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from accounts.models import LoginSession
from scoreboard_project import aio
from scoreboard_project.redis import RedisError, redis_client

logger = logging.getLogger(__name__)

REVOKED = b"-"


def session_cache_key(sid: str) -> str:
    return f"session:{sid}"


def session_state_from_cache(value: bytes | None, *, user_id: int) -> bool | None:
    """Read a cached session entry: True live, False dead, None unknown (ask the database)."""
    if value is None:
        return None
    if value == REVOKED:
        return False
    return value == str(user_id).encode()


def session_is_live(*, sid: str, user_id: int) -> bool:
    """Tell whether the session behind a token is still open."""
    client = redis_client()
    if client is not None:
        try:
            state = session_state_from_cache(client.get(session_cache_key(sid)), user_id=user_id)
        except RedisError:
            logger.warning("redis unreachable for session check; using the database")
            return session_load(sid=sid, user_id=user_id, cache=False)
        if state is not None:
            return state
    return session_load(sid=sid, user_id=user_id, cache=client is not None)


async def session_is_live_async(*, sid: str, user_id: int) -> bool:
    """The async form; concurrent checks share one MGET."""
    client = aio.async_redis()
    if client is not None:
        try:
            cached = await aio.loop_singleton("session-lookups", lambda: aio.Coalescer(_session_values))(sid)
        except RedisError as error:
            logger.warning("redis unreachable for session check (%s); using the database", error)
        else:
            state = session_state_from_cache(cached, user_id=user_id)
            if state is not None:
                return state
            return await aio.db_call(session_load)(sid=sid, user_id=user_id, cache=True)
    return await aio.db_call(session_load)(sid=sid, user_id=user_id, cache=False)


async def _session_values(sids: list[str]) -> list[bytes | None]:
    """The cached entries of many sessions in one round trip (concurrent requests share it)."""
    return await aio.async_redis().mget([session_cache_key(sid) for sid in sids])


def session_load(*, sid: str, user_id: int, cache: bool) -> bool:
    """Ask the database, and remember the answer in Redis when it is there."""
    expires_at = (
        LoginSession.objects.filter(
            id=sid,
            user_id=user_id,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            user__is_active=True,
        )
        .values_list("expires_at", flat=True)
        .first()
    )
    if cache:
        if expires_at is None:
            session_cache_revoked(sids=[sid])
        else:
            session_cache_live(sid=sid, user_id=user_id, expires_at=expires_at)
    return expires_at is not None


def session_cache_live(*, sid: str, user_id: int, expires_at) -> None:
    client = redis_client()
    if client is None:
        return
    # Bounded, so that a revocation Redis missed is still seen within minutes.
    remaining = int((expires_at - timezone.now()).total_seconds())
    ttl = max(1, min(remaining, settings.SESSION_CACHE_SECONDS))
    try:
        # nx: a late "live" write must never replace a revocation stored meanwhile.
        client.set(session_cache_key(sid), str(user_id), ex=ttl, nx=True)
    except RedisError:
        logger.warning("redis unreachable; session %s not cached", sid)


def session_cache_revoked(*, sids: list[str]) -> None:
    """Mark sessions dead in Redis for as long as any of their access tokens can live."""
    client = redis_client()
    if client is None or not sids:
        return
    ttl = settings.JWT_EXPIRY + 60
    try:
        with client.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.set(session_cache_key(sid), REVOKED, ex=ttl)
            pipe.execute()
    except RedisError:
        # The database already says revoked; a cached live entry lasts at most
        # SESSION_CACHE_SECONDS, after which the database is asked again.
        logger.error("redis unreachable; revoked sessions %s still cached as live", sids)
