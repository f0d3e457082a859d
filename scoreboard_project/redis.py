"""One shared Redis client per process, or None when REDIS_URL is empty."""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

RedisError = redis.RedisError


@lru_cache(maxsize=4)
def _client_for(url: str, timeout: float) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


def redis_client() -> redis.Redis | None:
    """The Redis client for REDIS_URL, created on first use; None without Redis."""
    if not settings.REDIS_URL:
        return None
    return _client_for(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT)
