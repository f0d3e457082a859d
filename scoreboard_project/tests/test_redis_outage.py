"""Redis dies under the service: credits still commit and answer, the board comes from the
database, the circuit breaker spares every request the wait, and the index is rebuilt when
Redis returns. Against a real redis-server of the test's own, killed and restarted."""

from __future__ import annotations

import time

import pytest
import redis
from django.db.models import Sum

from conftest import new_action
from leaderboard.selectors import board_keys
from scoreboard_project.redis import breaker_for
from scoreboard_project.tests.faults import RedisServer, SilentServer
from scoreboard_project.tests.faults import timed_post as post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not RedisServer.available(), reason="needs redis-server (apt-get install redis-server)"
    ),
]


@pytest.fixture
def disposable_redis(settings):
    server = RedisServer().start()
    settings.REDIS_URL = server.url()
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    settings.REDIS_BREAKER_FAILURES = 2
    settings.REDIS_BREAKER_RESET = 0.5
    yield server
    server.stop()


def db_state(django_db_blocker) -> tuple[dict[int, int], dict[int, int]]:
    from scores.models import Score, ScoreHistory

    with django_db_blocker.unblock():
        totals = dict(Score.objects.values_list("user_id", "total_score"))
        sums = dict(
            ScoreHistory.objects.filter(voided_at__isnull=True)
            .values("user_id")
            .annotate(total=Sum("points"))
            .values_list("user_id", "total")
        )
    return totals, sums


def index_of(server: RedisServer) -> dict[int, int]:
    client = redis.Redis(port=server.port)
    try:
        return {
            int(user): int(score) for user, score in client.zrange(board_keys().index, 0, -1, withscores=True)
        }
    finally:
        client.close()


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_credits_commit_and_answer_while_redis_is_down_and_the_index_comes_back(
    asgi, disposable_redis, make_user, login, action_types, django_db_blocker
):
    leader, player = make_user(), make_user()
    leader_token, token = login(leader)["access"], login(player)["access"]
    assert post(asgi, leader_token, new_action(points=90))[0].status_code == 200
    first, _ = post(asgi, token, new_action(points=10))
    assert first.json() == {"success": True, "user_id": player.id, "new_score": 10, "rank": 2}

    disposable_redis.stop()
    answers, durations = [], []
    down_actions = [new_action(points=20) for _ in range(6)]
    for action in down_actions:
        response, took = post(asgi, token, action)
        answers.append(response)
        durations.append(took)
    assert [response.status_code for response in answers] == [200] * 6, answers[0].content
    # Correct totals, and ranks computed from the database (the leader is still above).
    assert [response.json()["new_score"] for response in answers] == [30, 50, 70, 90, 110, 130]
    assert [response.json()["rank"] for response in answers] == [2, 2, 2, 1, 1, 1]
    # The breaker opened: the later requests did not wait on Redis at all.
    assert breaker_for("127.0.0.1", disposable_redis.port).is_open
    assert max(durations[-3:]) < 0.25, durations

    # A replay while Redis is down: the original answer, the score moved once.
    replay, _ = post(asgi, token, down_actions[0])
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == answers[0].json()
    assert post(asgi, token, {**down_actions[0], "points": 21})[0].json()["error_code"] == "DUPLICATE_ACTION"

    # The board is served from the database meanwhile.
    board = asgi("GET", "/api/scoreboard")
    assert board.status_code == 200
    assert [(entry["user_id"], entry["score"]) for entry in board.json()["leaderboard"]] == [
        (player.id, 130),
        (leader.id, 90),
    ]
    assert board.json()["total_players"] == 2

    # Redis returns empty (no persistence): the next call probes, the breaker closes and the
    # index is rebuilt from the database, with every point.
    disposable_redis.start()
    time.sleep(0.6)
    back, _ = post(asgi, leader_token, new_action(points=5))
    assert back.status_code == 200
    assert wait_for(lambda: index_of(disposable_redis) == {leader.id: 95, player.id: 130}), index_of(
        disposable_redis
    )
    assert not breaker_for("127.0.0.1", disposable_redis.port).is_open
    totals, sums = db_state(django_db_blocker)
    assert totals == sums == {leader.id: 95, player.id: 130}
    assert asgi("GET", "/api/scoreboard").json()["leaderboard"][0]["score"] == 130


@pytest.mark.ratelimits
def test_rate_limits_fall_back_to_the_process_while_redis_is_down(
    asgi, disposable_redis, make_user, login, action_types, settings, caplog
):
    settings.RATE_LIMIT_PER_USER = 2
    token = login(make_user())["access"]
    disposable_redis.stop()
    statuses = [post(asgi, token, new_action())[0].status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert "rate limits counted in this process" in caplog.text


def test_the_breaker_spares_requests_the_wait_on_a_hung_redis(settings):
    """A server that accepts and never answers: each call would wait the socket timeout."""
    from scoreboard_project.redis import redis_client

    silent = SilentServer()
    settings.REDIS_URL = f"redis://127.0.0.1:{silent.port}/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.3
    settings.REDIS_BREAKER_FAILURES = 2
    settings.REDIS_BREAKER_RESET = 60
    try:
        client = redis_client()
        durations = []
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(redis.RedisError):
                client.get("anything")
            durations.append(time.monotonic() - started)
        assert min(durations[:2]) >= 0.25, durations  # the timeout was real
        assert max(durations[2:]) < 0.02, durations  # then the circuit was open
    finally:
        silent.close()


def test_the_breaker_probes_after_the_pause_and_closes():
    from scoreboard_project.breaker import CircuitBreaker

    recovered = []
    breaker = CircuitBreaker("test", failures=2, reset=0.2)
    breaker.on_recover.append(lambda found, since: recovered.append(since))
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow() and breaker.is_open
    time.sleep(0.25)
    probe, other = object(), object()
    assert breaker.allow(probe)  # half-open: the probe goes
    assert not breaker.allow(other)  # and only the probe
    breaker.failure(probe)  # the probe failed: another pause
    assert not breaker.allow(probe)
    time.sleep(0.25)
    assert breaker.allow(probe)
    breaker.success(probe)
    assert not breaker.is_open and breaker.allow(other)
    assert len(recovered) == 1 and recovered[0] > 0


def test_recovery_rebuilds_once_across_processes(disposable_redis, make_user, django_db_blocker):
    """The lock and the mark: a second process recovering from the same outage skips."""
    from leaderboard.services import leaderboard_recover, recovery_keys
    from scores.models import Score

    user = make_user()
    with django_db_blocker.unblock():
        Score.objects.create(user=user, total_score=40)
        since = time.time() - 5  # the last failed Redis call of the outage
        assert leaderboard_recover(since=since) == "rebuilt"
        assert index_of(disposable_redis) == {user.id: 40}
        assert leaderboard_recover(since=since) == "skipped"
        # Another process holds the lock and never finishes: give up (and say so), do not wait forever.
        client = redis.Redis(port=disposable_redis.port)
        client.set(recovery_keys()[0], "someone-else")
        import leaderboard.services as services

        services.RECOVERY_WAIT_SECONDS, saved = 0.3, services.RECOVERY_WAIT_SECONDS
        try:
            assert leaderboard_recover(since=time.time() + 10) == "gave-up"
        finally:
            services.RECOVERY_WAIT_SECONDS = saved


def test_boards_are_read_from_the_ledger_while_redis_is_down_and_rebuilt_when_it_returns(
    asgi, disposable_redis, make_user, login, action_types, django_db_blocker
):
    from leaderboard.boards import boards_forget, period_index
    from leaderboard.models import Board
    from leaderboard.periods import period_at

    with django_db_blocker.unblock():
        board = Board.objects.create(code="wk", title="Week", window="weekly", action_types=["quest"])
    boards_forget()
    ada, bob = make_user(), make_user()
    ada_token, bob_token = login(ada)["access"], login(bob)["access"]
    assert post(asgi, ada_token, new_action(points=40))[0].status_code == 200

    disposable_redis.stop()
    for points in (30, 25):
        assert post(asgi, bob_token, new_action(points=points))[0].status_code == 200
    page = asgi("GET", "/api/boards/wk")
    assert page.status_code == 200, page.content
    assert [(entry["user_id"], entry["score"], entry["rank"]) for entry in page.json()["leaderboard"]] == [
        (bob.id, 55, 1),
        (ada.id, 40, 2),
    ]
    around = asgi(
        "GET", "/api/boards/wk/around-me?radius=1", headers={"authorization": f"Bearer {ada_token}"}
    )
    assert around.status_code == 200 and around.json()["player"]["rank"] == 2

    # Redis returns empty: the recovery after the outage rebuilds the boards too.
    disposable_redis.start()
    time.sleep(0.6)
    assert post(asgi, ada_token, new_action(points=1))[0].status_code == 200
    key = period_index("wk", period_at(board, board.created_at).key)

    def indexed() -> list[float]:
        client = redis.Redis(port=disposable_redis.port)
        try:
            return sorted(score for _, score in client.zrange(key, 0, -1, withscores=True))
        finally:
            client.close()

    assert wait_for(lambda: indexed() == [-55.0, -41.0]), indexed()
