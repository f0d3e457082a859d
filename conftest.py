"""Shared fixtures: players, tokens, API clients, action types and clean Redis state."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from antifraud.addresses import blocklist_forget
from antifraud.rules import rules_forget
from leaderboard.board import local_board_invalidate
from leaderboard.events import hubs
from scoreboard_project import aio
from scoreboard_project.asgiclient import AsgiResponse, asgi_call
from scoreboard_project.redis import redis_client
from scores.selectors import action_rules_forget

DEMO_TYPES = {
    "quest": (1, 100),
    "match_win": (10, 200),
    "level_up": (50, 1000),
}
_names = itertools.count(1)


def pytest_collection_modifyitems(config, items):
    on_postgres = connection.vendor == "postgresql"
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set by `make test` when reachable)"))
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs Redis (set by `make test` when reachable)"))


@pytest.fixture(scope="session", autouse=True)
def _background_loop(django_db_setup, django_db_blocker):
    """Close the async services' pools before the test database is dropped."""
    yield
    aio.background.close()


@pytest.fixture(autouse=True)
def _generous_rate_limits(request, settings):
    """Tests of other behaviour post more than a player may per minute; the rate-limit
    tests (marker `ratelimits`) keep the real defaults."""
    from antifraud.ratelimits import local_limits

    local_limits.clear()
    if "ratelimits" not in request.keywords:
        settings.RATE_LIMIT_PER_USER = 1_000_000
        settings.RATE_LIMIT_GLOBAL = 1_000_000_000


@pytest.fixture(autouse=True)
def _clean_state():
    client = redis_client()
    if client is not None:
        client.flushdb()
    cache.clear()
    action_rules_forget()
    rules_forget()
    blocklist_forget()
    local_board_invalidate()
    for hub in list(hubs.values()):
        hub.last_entries = None
    yield
    for hub in list(hubs.values()):
        assert not hub.sockets, "a test left live sockets behind; disconnect them"
    action_rules_forget()
    rules_forget()
    blocklist_forget()
    local_board_invalidate()


@pytest.fixture
def action_types(django_db_blocker):
    """The demo action types (transactional tests flush the migration's rows)."""
    from scores.models import ActionType

    with django_db_blocker.unblock():
        for name, (low, high) in DEMO_TYPES.items():
            ActionType.objects.update_or_create(
                name=name, defaults={"min_points": low, "max_points": high, "enabled": True}
            )
    action_rules_forget()
    return DEMO_TYPES


@pytest.fixture
def make_user(django_db_blocker):
    from accounts.models import User

    def make(username: str | None = None, password: str = "correct-Horse-battery-9", **extra):
        with django_db_blocker.unblock():
            return User.objects.create_user(
                username=username or f"player{next(_names)}", password=password, **extra
            )

    return make


@pytest.fixture
def login(django_db_blocker):
    """Open a session for a user and return the token response body."""
    from accounts.services import session_open

    def open_session(user) -> dict:
        with django_db_blocker.unblock():
            return session_open(user=user)

    return open_session


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def client_for(login):
    """An API client authenticated as the given user (a fresh session)."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(user)['access']}")
        return client

    return make


def new_action(action_type: str = "quest", points: int = 10, **extra) -> dict:
    return {"action_id": str(uuid.uuid4()), "action_type": action_type, "points": points, **extra}


class SqlLog:
    """Every SQL statement this process sends, from any thread or event loop."""

    def __init__(self, monkeypatch):
        import psycopg
        from django.db.backends import utils

        self.statements: list[str] = []
        log = self.statements
        django_execute = utils.CursorWrapper._execute
        async_execute = psycopg.AsyncCursor.execute

        def traced_django(cursor, sql, params, *args):
            log.append(str(sql))
            return django_execute(cursor, sql, params, *args)

        async def traced_async(cursor, query, params=None, **kwargs):
            log.append(str(query))
            return await async_execute(cursor, query, params, **kwargs)

        monkeypatch.setattr(utils.CursorWrapper, "_execute", traced_django)
        monkeypatch.setattr(psycopg.AsyncCursor, "execute", traced_async)

    @property
    def queries(self) -> list[str]:
        """The statements, without transaction control."""
        return [
            sql
            for sql in self.statements
            if not sql.strip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE"))
        ]


class RedisLog:
    """Round trips this process makes to Redis (a pipeline or a script counts once)."""

    def __init__(self, monkeypatch):
        import redis
        import redis.asyncio.connection

        self.count = 0
        sync_send = redis.connection.AbstractConnection.send_packed_command
        async_send = redis.asyncio.connection.AbstractConnection.send_packed_command

        def traced_sync(connection, command, check_health=True):
            self.count += 1
            return sync_send(connection, command, check_health)

        async def traced_async(connection, command, check_health=True):
            self.count += 1
            return await async_send(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", traced_sync)
        monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", traced_async)


@pytest.fixture
def sql_log(monkeypatch):
    """Start recording SQL: `log = sql_log()`; read `log.queries`."""
    return lambda: SqlLog(monkeypatch)


@pytest.fixture
def redis_log(monkeypatch):
    """Start counting Redis round trips: `log = redis_log()`; read `log.count`."""
    return lambda: RedisLog(monkeypatch)


def asgi_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> AsgiResponse:
    """Send one request through the production ASGI application (hot door included)."""
    return aio.run(asgi_call(method, path, body, headers))


@pytest.fixture
def asgi():
    return asgi_request
