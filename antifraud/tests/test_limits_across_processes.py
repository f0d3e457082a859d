"""Rate limits and penalties held by two real server processes sharing PostgreSQL and Redis.

Each test starts two uvicorn processes with the same settings and alternates requests
between them, as a load balancer would.
"""

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection

from leaderboard.tests.browser import ServerProcess, database_url_for, free_port
from scores.models import ScoreHistory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.ratelimits,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def servers(action_types):
    started: list[ServerProcess] = []

    def start(**limits) -> tuple[ServerProcess, ServerProcess]:
        env = {
            **os.environ,
            "SECRET_KEY": settings.SECRET_KEY,
            "JWT_SECRET": settings.JWT_SECRET,
            "REDIS_URL": settings.REDIS_URL,
            "DB_CONNECTION_STRING": database_url_for(connection.settings_dict["NAME"]),
            "DEBUG": "false",
            "LOG_FORMAT": "text",
            **{name: str(value) for name, value in limits.items()},
        }
        pair = [ServerProcess(port=free_port(), env=env) for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(), pair))
        started.extend(pair)
        return pair[0], pair[1]

    yield start
    for server in started:
        server.stop()


def post(server: ServerProcess, token: str, points: int = 5, **headers: str) -> tuple[int, object, dict]:
    body = json.dumps({"action_id": str(uuid.uuid4()), "action_type": "quest", "points": points}).encode()
    request = urllib.request.Request(
        server.url + "/api/scores",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


@pytest.fixture
def player(make_user, login):
    user = make_user()
    user.token = login(user)["access"]
    return user


def test_the_server_leaves_x_forwarded_for_to_trusted_proxies(servers, player):
    """uvicorn rewrites the client address from X-Forwarded-For for loopback peers unless
    told not to: a client on the same host could then pose as any address. The production
    command turns that off, so TRUSTED_PROXIES (empty here) alone decides."""
    a, _ = servers(TRUSTED_PROXIES="")
    assert post(a, player.token, **{"X-Forwarded-For": "203.0.113.9"})[0] == 200
    assert list(ScoreHistory.objects.filter(user=player).values_list("client_ip", flat=True)) == ["127.0.0.1"]


def test_the_eleventh_request_in_a_window_is_refused_by_either_process(servers, player):
    a, b = servers(RATE_LIMIT_PER_USER=10, RATE_LIMIT_WINDOW=20)
    first = time.monotonic()
    answers = [post((a, b)[n % 2], player.token)[0] for n in range(10)]
    assert answers == [200] * 10
    status, headers, body = post(b, player.token)
    waited = time.monotonic() - first
    assert status == 429 and body["error_code"] == "RATE_LIMIT_EXCEEDED"
    # The oldest of the ten leaves the window 20 s after it was admitted.
    assert 20 - waited - 1 <= body["retry_after"] <= 20
    assert int(headers["Retry-After"]) == body["retry_after"]
    assert post(a, player.token)[0] == 429


def test_a_burst_straddling_the_window_boundary_never_exceeds_the_limit(servers, player):
    window, limit = 2, 10
    a, b = servers(RATE_LIMIT_PER_USER=limit, RATE_LIMIT_WINDOW=window, PENALTY_VIOLATIONS=100000)

    def hammer(server):
        accepted = 0
        deadline = time.monotonic() + 3 * window + 0.5
        while time.monotonic() < deadline:
            accepted += post(server, player.token)[0] == 200
            time.sleep(0.01)
        return accepted

    with ThreadPoolExecutor(2) as pool:
        accepted = sum(pool.map(hammer, (a, b)))
    times = sorted(ScoreHistory.objects.filter(user=player).values_list("created_at", flat=True))
    assert len(times) == accepted
    # At most `limit` in ANY window: the (limit+1)-th credit after any credit comes a window
    # later (commit times trail the admission by a few milliseconds: 50 ms of tolerance).
    for position in range(len(times) - limit):
        assert (times[position + limit] - times[position]).total_seconds() >= window - 0.05
    # And the limit is reached, not merely respected: about `limit` per window.
    assert accepted >= limit * 3


def test_the_global_limit_holds_across_processes(servers, make_user, login):
    a, b = servers(RATE_LIMIT_PER_USER=10, RATE_LIMIT_WINDOW=30, RATE_LIMIT_GLOBAL=15)
    players = [make_user() for _ in range(3)]
    tokens = [login(user)["access"] for user in players]
    answers = [post((a, b)[n % 2], tokens[n % 3]) for n in range(24)]
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 15
    refused = [body for status, _, body in answers if status == 429]
    assert len(refused) == 9 and all("service" in body["message"] for body in refused)


def test_penalties_escalate_and_expire_across_processes(servers, player):
    a, b = servers(
        RATE_LIMIT_PER_USER=1,
        RATE_LIMIT_WINDOW=30,
        PENALTY_VIOLATIONS=2,
        PENALTY_PERIOD=60,
        PENALTY_STEPS="2,4",
    )
    assert post(a, player.token)[0] == 200
    assert post(b, player.token)[0] == 429  # first violation
    status, _, body = post(a, player.token)  # the second bans: step 1, 2 s
    assert status == 403 and body["error_code"] == "ACCOUNT_SUSPENDED" and body["retry_after"] <= 2
    assert post(b, player.token)[0] == 403  # the other process knows
    time.sleep(2.2)
    assert post(b, player.token)[0] == 429  # the ban expired; the window has not
    status, _, body = post(a, player.token)  # the next ban is the ladder's second step, 4 s
    assert status == 403 and 2 < body["retry_after"] <= 4
