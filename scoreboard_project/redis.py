"""One shared Redis client per process, or None when REDIS_URL is empty.

Every Redis connection of the process (this sync client, the event loops' asyncio clients in
scoreboard_project.aio, the Django cache) goes through a circuit breaker per server
(scoreboard_project.breaker): after `REDIS_BREAKER_FAILURES` consecutive failures calls are
refused at once with a ConnectionError, the callers' fallbacks answer from the database, and
after `REDIS_BREAKER_RESET` seconds one call probes the server again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from functools import lru_cache

import redis
import redis.asyncio.connection as aconnection
import redis.connection as sconnection
from django.conf import settings
from redis.utils import HIREDIS_AVAILABLE

from scoreboard_project.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

RedisError = redis.RedisError
# What a dead or unreachable server looks like (not a script or command error).
FAILURES = (redis.ConnectionError, redis.TimeoutError, OSError)

_breakers: dict[tuple[str, int], CircuitBreaker] = {}
_breakers_lock = threading.Lock()
_recovery_hooks: list = []


def breaker_for(host: str, port: int) -> CircuitBreaker:
    """The breaker of one Redis server (per process, shared by every client and loop)."""
    key = (str(host), int(port))
    found = _breakers.get(key)
    if found is None:
        with _breakers_lock:
            found = _breakers.get(key)
            if found is None:
                found = CircuitBreaker(
                    f"redis {host}:{port}",
                    failures=settings.REDIS_BREAKER_FAILURES,
                    reset=settings.REDIS_BREAKER_RESET,
                )
                found.on_recover.extend(_recovery_hooks)
                _breakers[key] = found
    return found


def breaker_on_recover(hook) -> None:
    """Call `hook(breaker, outage_until)` whenever a Redis breaker closes after an outage."""
    _recovery_hooks.append(hook)
    for found in list(_breakers.values()):
        found.on_recover.append(hook)


def redis_breaker() -> CircuitBreaker | None:
    """The breaker of REDIS_URL's server, or None without Redis."""
    if not settings.REDIS_URL:
        return None
    pool = redis.ConnectionPool.from_url(settings.REDIS_URL)
    kwargs = pool.connection_kwargs
    return breaker_for(kwargs.get("host", "localhost"), kwargs.get("port", 6379))


class _Guard:
    """The breaker checks shared by the sync and asyncio connection classes."""

    _breaker: CircuitBreaker | None = None

    def _guard(self) -> CircuitBreaker:
        found = self._breaker
        if found is None:
            found = self._breaker = breaker_for(self.host, self.port)
        return found

    def _failed(self, error: BaseException) -> None:
        """Count one failure per failed call (a health check inside a send fails both)."""
        seen = error
        while seen is not None:
            if getattr(seen, "_breaker_counted", False):
                return
            seen = seen.__cause__ or seen.__context__
        with contextlib.suppress(AttributeError):
            error._breaker_counted = True  # type: ignore[attr-defined]
        self._guard().failure(self)

    def _admit(self) -> None:
        if not self._guard().allow(self):
            raise redis.ConnectionError(f"redis circuit open ({self.host}:{self.port}): call skipped")


class BreakerConnection(_Guard, sconnection.Connection):
    def _connect(self):
        self._admit()
        try:
            return super()._connect()
        except FAILURES as error:
            self._failed(error)
            raise

    def send_packed_command(self, command, check_health=True):
        self._admit()
        try:
            return super().send_packed_command(command, check_health)
        except FAILURES as error:
            self._failed(error)
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except FAILURES as error:
            self._failed(error)
            raise
        self._guard().success(self)
        return response


class AsyncBreakerConnection(_Guard, aconnection.Connection):
    if HIREDIS_AVAILABLE:
        _packer = sconnection.HiredisRespSerializer()

        def pack_command(self, *args):
            """In C, as redis-py's synchronous connection does with hiredis: the asyncio one
            packs in Python, joining a growing buffer once per argument (a record call of 30
            credits has ~180 arguments: 7 us of a credit)."""
            return self._packer.pack(*args)

    async def _connect(self):
        self._admit()
        try:
            return await super()._connect()
        except FAILURES as error:
            self._failed(error)
            raise

    async def send_packed_command(self, command, check_health=True):
        self._admit()
        try:
            return await super().send_packed_command(command, check_health)
        except FAILURES as error:
            self._failed(error)
            raise

    async def read_response(self, *args, **kwargs):
        try:
            response = await super().read_response(*args, **kwargs)
        except FAILURES as error:
            self._failed(error)
            raise
        self._guard().success(self)
        return response


@lru_cache(maxsize=4)
def _client_for(url: str, timeout: float) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        connection_class=BreakerConnection,
    )
    return redis.Redis(connection_pool=pool)


def redis_client() -> redis.Redis | None:
    """The Redis client for REDIS_URL, created on first use; None without Redis."""
    if not settings.REDIS_URL:
        return None
    return _client_for(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT)


class LuaScript:
    """A Lua script for asyncio clients, called by EVALSHA and loaded on NOSCRIPT.

    For the scripts of the hot path: redis-py's `register_script` object checks its client
    against a typing Protocol on every call, about 1 % of a score update.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts so

    async def __call__(self, client, keys: list, args: list):
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)
