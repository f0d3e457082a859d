"""Shared fixtures: players, tokens, API clients, action types and clean Redis state."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

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


@pytest.fixture(autouse=True)
def _clean_state():
    client = redis_client()
    if client is not None:
        client.flushdb()
    cache.clear()
    action_rules_forget()
    yield
    action_rules_forget()


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
