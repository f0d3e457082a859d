"""Event-loop plumbing for the async hot path.

Each event loop gets its own PostgreSQL pool, Redis client and group committer (their
connections belong to that loop). Synchronous callers (DRF views, the admin, management
commands, Celery tasks) run the same async services on one background loop per process
through `run()`, so every door shares the hot path's code and its group commit.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

import redis.asyncio as aredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections

from scoreboard_project.hotsettings import hot
from scoreboard_project.redis import AsyncBreakerConnection

logger = logging.getLogger(__name__)
T = TypeVar("T")


class LoopResources:
    """What one event loop owns: created on first use, closed with the loop's server."""

    def __init__(self) -> None:
        self.pg_pool: Any = None
        self.redis: dict[str, aredis.Redis] = {}
        self.singletons: dict[str, Any] = {}
        self.pool_check: asyncio.Task | None = None

    async def close(self) -> None:
        if self.pool_check is not None:
            self.pool_check.cancel()
        for value in self.singletons.values():
            closer = getattr(value, "aclose", None)
            if closer is not None:
                await closer()
        self.singletons.clear()
        for client in self.redis.values():
            await client.aclose(close_connection_pool=True)
        self.redis.clear()
        if self.pg_pool is not None:
            await self.pg_pool.close()
            self.pg_pool = None


_by_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, LoopResources] = WeakKeyDictionary()


# The last loop asked about and its resources: a server process has one loop, and the
# WeakKeyDictionary lookup costs more than the identity check (several calls per request).
_last: tuple[asyncio.AbstractEventLoop | None, LoopResources | None] = (None, None)


def loop_resources() -> LoopResources:
    global _last
    loop = asyncio.get_running_loop()
    last_loop, found = _last
    if last_loop is loop and found is not None:
        return found
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = LoopResources()
    _last = (loop, found)
    return found


def loop_singleton(name: str, factory: Callable[[], T]) -> T:
    """One object per event loop (a committer, a board cache), made on first use."""
    resources = loop_resources()
    found = resources.singletons.get(name)
    if found is None:
        found = resources.singletons[name] = factory()
    return found


_vendor: str | None = None


def postgres_enabled() -> bool:
    global _vendor
    if _vendor is None:  # asked on every score update; the default database does not change
        _vendor = connections["default"].vendor
    return _vendor == "postgresql"


def _databases_changed(*, setting: str, **kwargs) -> None:
    global _vendor
    if setting == "DATABASES":
        _vendor = None


setting_changed.connect(_databases_changed)


def _conninfo() -> dict[str, Any]:
    # settings_dict, not settings.DATABASES: the test runner renames the database there.
    params = connections["default"].settings_dict
    info = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
        **params.get("OPTIONS", {}),
    }
    return {key: value for key, value in info.items() if value is not None}


async def pg_pool():
    """This loop's psycopg pool (autocommit connections), opened on first use."""
    resources = loop_resources()
    if resources.pg_pool is None:
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            kwargs={**_conninfo(), "autocommit": True},
            min_size=1,
            max_size=settings.DB_POOL_SIZE,
            timeout=settings.DB_POOL_TIMEOUT,
            open=False,
            name="hot-path",
        )
        resources.pg_pool = pool
        await pool.open()
    return resources.pg_pool


def pg_pool_check_soon() -> None:
    """After a connection error: have this loop's pool test its idle connections in the
    background and drop the dead ones, so that requests after an outage do not each meet one
    (psycopg's pool would hand them out until they fail)."""
    resources = _by_loop.get(asyncio.get_running_loop())
    pool = resources.pg_pool if resources is not None else None
    if pool is None or resources.pool_check is not None:
        return

    async def check() -> None:
        try:
            await pool.check()
        except Exception:  # best effort: the pool reconnects by itself anyway
            logger.debug("pool check failed", exc_info=True)
        finally:
            resources.pool_check = None

    resources.pool_check = asyncio.get_running_loop().create_task(check())


def pg_pool_check_soon_threadsafe() -> None:
    """`pg_pool_check_soon` for the background loop, from a synchronous caller's thread."""
    loop = background._loop
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(pg_pool_check_soon)


def async_redis(url: str | None = None) -> aredis.Redis | None:
    """This loop's Redis client for REDIS_URL (or `url`), or None without Redis."""
    url = hot.REDIS_URL if url is None else url
    if not url:
        return None
    resources = loop_resources()
    client = resources.redis.get(url)
    if client is None:
        # A blocking pool: a request waits for a free connection instead of failing.
        pool = aredis.BlockingConnectionPool.from_url(
            url,
            max_connections=settings.REDIS_POOL_SIZE,
            timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
            health_check_interval=30,
            connection_class=AsyncBreakerConnection,  # skip a dead Redis at once
        )
        client = resources.redis[url] = aredis.Redis(connection_pool=pool)
    return client


def db_call(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run ORM code from async code in a worker thread, for the rare paths only (a session
    cache miss, a replay, the action-type refresh). The worker's connection is closed after
    each call: no request cycle would ever close it otherwise."""

    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    wrapped = functools.wraps(function)(guarded)

    async def call(*args, **kwargs):
        # SQLite serialises writers anyway, and readers racing a writer fail at once on a
        # shared-cache database: one thread for it. PostgreSQL gets a thread per call.
        serial = not postgres_enabled()
        return await sync_to_async(wrapped, thread_sensitive=serial)(*args, **kwargs)

    return call


class ProcessCopy(Generic[T]):
    """A value read from the database and kept in this process's memory for a TTL (the
    setting named `ttl_setting`), for the hot path to read without a query.

    Past the TTL, async readers keep getting the copy they have while one refresh runs in the
    background: under load, every request in flight at the moment of expiry would otherwise
    open its own connection in its own thread. A reader with no copy yet (first use, after
    `forget()`, or a TTL of 0) waits for the database.
    """

    def __init__(self, load: Callable[[], T], ttl_setting: str) -> None:
        self._load = load
        self.ttl_setting = ttl_setting
        self.value: T | None = None
        self.loaded_at = 0.0  # 0: no copy
        self.fresh_until = 0.0
        self.generation = 0  # a forget() makes a refresh already under way store nothing
        self.refreshing: asyncio.Task | None = None
        setting_changed.connect(self._setting_changed, weak=False)

    def reload(self) -> T:
        generation = self.generation
        value = self._load()
        if generation == self.generation:
            now = time.monotonic()
            self.value, self.loaded_at = value, now
            self.fresh_until = now + getattr(settings, self.ttl_setting)
        return value

    def get(self) -> T:
        """The copy, re-read (synchronously) when it is older than the TTL."""
        if time.monotonic() < self.fresh_until:
            return self.value  # type: ignore[return-value]
        return self.reload()

    async def get_async(self) -> T:
        if time.monotonic() < self.fresh_until:
            return self.value  # type: ignore[return-value]
        if not self.loaded_at or not getattr(settings, self.ttl_setting):  # no copy, or no TTL
            return await db_call(self.reload)()
        task = self.refreshing
        if task is None or task.done() or task.get_loop().is_closed():
            self.refreshing = asyncio.get_running_loop().create_task(db_call(self.reload)())
            self.refreshing.add_done_callback(_refresh_done)
        return self.value  # type: ignore[return-value]

    def forget(self) -> None:
        """Drop the copy (an admin edit): the next reader waits for the database."""
        self.generation += 1
        self.value, self.loaded_at, self.fresh_until = None, 0.0, 0.0

    def _setting_changed(self, *, setting: str, **kwargs) -> None:
        if setting == self.ttl_setting:  # the TTL was read at the last load
            self.forget()


def _refresh_done(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background refresh failed; the previous copy stays", exc_info=task.exception())


class BackgroundLoop:
    """One event loop in a daemon thread, for synchronous callers of async services."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="scoreboard-aio", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def run(self, coroutine: Awaitable[T], timeout: float | None = 60) -> T:
        loop = self.loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("aio.run() called from the background loop itself")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return

        async def close_resources():
            resources = _by_loop.get(loop)
            if resources is not None:
                await resources.close()

        try:
            asyncio.run_coroutine_threadsafe(close_resources(), loop).result(10)
        except Exception:  # closing is best effort at shutdown
            logger.warning("background loop resources did not close cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)


background = BackgroundLoop()
run = background.run
atexit.register(background.close)


async def close_loop_resources() -> None:
    """Close what the running loop owns (ASGI lifespan shutdown)."""
    global _last
    _last = (None, None)
    resources = _by_loop.pop(asyncio.get_running_loop(), None)
    if resources is not None:
        await resources.close()


class Coalescer:
    """Batch the calls made in one event-loop iteration into one call of `flush(items)`.

    Under load many requests are in flight at once; their Redis commands then share a round
    trip instead of paying one each. `flush` returns one result per item, in order.
    """

    def __init__(self, flush: Callable[[list], Awaitable[list]]):
        self.flush = flush
        self.pending: list[tuple[Any, asyncio.Future]] = []
        self.scheduled = False

    async def __call__(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((item, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self.pending, self.scheduled = self.pending, [], False
        loop.create_task(self._run(batch))

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            results = await self.flush([item for item, _ in batch])
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
