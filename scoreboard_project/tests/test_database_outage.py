"""PostgreSQL becomes unreachable: every database-backed endpoint answers 503
SERVICE_UNAVAILABLE in the error shape, nothing reaches Redis or the sockets for a credit that
failed, and the board may be served from cache, marked stale. The database sits behind a real
TCP proxy that the test cuts (live connections dropped, new ones refused) and restores."""

from __future__ import annotations

import json
import time

import pytest
import redis
from django.db import connection, connections
from django.db.models import Sum

from accounts.tests.helpers import assert_error
from conftest import new_action
from leaderboard.board import local_board_invalidate
from leaderboard.ranking import idempotency_key
from leaderboard.selectors import board_keys
from scoreboard_project import aio
from scoreboard_project.tests.faults import TcpProxy
from scoreboard_project.tests.faults import timed_post as post

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


async def _drop_hot_path_pool() -> None:
    resources = aio.loop_resources()
    committer = resources.singletons.pop("group-commit", None)
    if committer is not None:
        await committer.aclose()
    if resources.pg_pool is not None:
        await resources.pg_pool.close()
        resources.pg_pool = None


@pytest.fixture
def database_proxy(settings):
    """Every new connection of this process (Django's and the hot path's pool) goes through
    a proxy in front of the test database."""
    params = connections["default"].settings_dict
    saved = {key: params.get(key) for key in ("HOST", "PORT", "CONN_MAX_AGE")}
    proxy = TcpProxy((params.get("HOST") or "127.0.0.1", int(params.get("PORT") or 5432))).start()
    settings.DB_POOL_TIMEOUT = 1.0
    params.update({"HOST": "127.0.0.1", "PORT": str(proxy.port), "CONN_MAX_AGE": 0})
    aio.run(_drop_hot_path_pool())
    connection.close()
    yield proxy
    proxy.stop()
    params.update(saved)
    aio.run(_drop_hot_path_pool())
    connection.close()


def totals_and_sums():
    from scores.models import Score, ScoreHistory

    totals = dict(Score.objects.values_list("user_id", "total_score"))
    sums = dict(
        ScoreHistory.objects.filter(voided_at__isnull=True)
        .values("user_id")
        .annotate(total=Sum("points"))
        .values_list("user_id", "total")
    )
    return totals, sums


def test_a_credit_is_503_and_leaves_no_trace_while_the_database_is_unreachable(
    asgi, database_proxy, make_user, login, action_types, settings
):
    player = make_user()
    token = login(player)["access"]
    assert post(asgi, token, new_action(points=30))[0].status_code == 200
    assert asgi("GET", "/api/scoreboard").status_code == 200
    redis_state = redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None
    index_before = redis_state.zrange(board_keys().index, 0, -1, withscores=True) if redis_state else None

    database_proxy.cut()
    action = new_action(points=12)
    refused, took = post(asgi, token, action)
    body = assert_error(refused, status=503, code="SERVICE_UNAVAILABLE", retry_after=True)
    assert body["retry_after"] == settings.DB_RETRY_AFTER
    assert refused["Retry-After"] == str(settings.DB_RETRY_AFTER)
    assert took < settings.DB_POOL_TIMEOUT + 2, took
    if redis_state is not None:
        # Nothing indexed, nothing remembered for a replay.
        assert redis_state.zrange(board_keys().index, 0, -1, withscores=True) == index_before
        assert redis_state.get(idempotency_key(action["action_id"])) is None
    # The board still answers (from Redis's cache, or this process's copy).
    assert asgi("GET", "/api/scoreboard").status_code == 200

    database_proxy.restore()
    deadline = time.monotonic() + 10
    while (again := post(asgi, token, action)[0]).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)  # the pool reconnects with a backoff
    # The same action is a first submission: nothing of it had been written.
    assert again.status_code == 200 and "Idempotent-Replayed" not in again
    assert again.json()["new_score"] == 42
    connection.close()  # the test's own connection died with the cut
    totals, sums = totals_and_sums()
    assert totals == sums == {player.id: 42}


def test_django_views_answer_503_while_the_database_is_unreachable(
    asgi, api, database_proxy, make_user, client_for, action_types
):
    scorer = client_for(make_user())
    database_proxy.cut()
    connection.close()
    register = api.post(
        "/api/auth/register", {"username": "newcomer", "password": "correct-Horse-battery-9"}, format="json"
    )
    assert_error(register, status=503, code="SERVICE_UNAVAILABLE", retry_after=True)
    assert register["Retry-After"]
    # The DRF view of POST /api/scores (the tests' client), through the score service.
    assert_error(
        scorer.post("/api/scores", new_action(), format="json"),
        status=503,
        code="SERVICE_UNAVAILABLE",
        retry_after=True,
    )
    # And a Django-routed endpoint through the production ASGI application.
    login = asgi(
        "POST",
        "/api/auth/token",
        json.dumps({"username": "someone", "password": "correct-Horse-battery-9"}).encode(),
        {"Content-Type": "application/json"},
    )
    assert login.status_code == 503 and login.json()["error_code"] == "SERVICE_UNAVAILABLE"
    database_proxy.restore()


def test_the_board_is_served_stale_without_database_or_redis(
    asgi, database_proxy, make_user, login, action_types, settings
):
    settings.REDIS_URL = ""  # no Redis cache to fall back on: this process's copy only
    player = make_user()
    token = login(player)["access"]
    assert post(asgi, token, new_action(points=25))[0].status_code == 200
    fresh = asgi("GET", "/api/scoreboard")
    assert fresh.status_code == 200 and "stale" not in fresh.json()

    database_proxy.cut()
    local_board_invalidate()  # a change was announced: the copy must be refreshed
    served = asgi("GET", "/api/scoreboard")
    assert served.status_code == 200
    assert served["X-Scoreboard-Stale"] == "true"
    body = served.json()
    assert body.pop("stale") is True
    assert body == fresh.json()
    database_proxy.restore()
    time.sleep(1.1)  # the stale copy is retried after a second
    assert "stale" not in asgi("GET", "/api/scoreboard").json()
