"""Faults in the middle of traffic, against the production server: two uvicorn processes on
a disposable redis-server and a TCP proxy in front of PostgreSQL. Redis is killed and
restarted, then the database is cut and restored, while clients post score updates and read
the board. Afterwards: no 5xx but the documented 503, no point lost or counted twice
(totals == accepted history, and exactly the actions answered 200 are in it), and the
ranking index equals the database again."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from leaderboard.selectors import board_keys, ranked_scores
from leaderboard.tests.browser import ServerProcess, free_port
from scoreboard_project.tests.faults import RedisServer, TcpProxy
from scores.models import Score, ScoreHistory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not RedisServer.available(), reason="needs redis-server (apt-get install redis-server)"
    ),
]


@pytest.fixture
def stack():
    params = connection.settings_dict
    redis_server = RedisServer().start()
    proxy = TcpProxy((params.get("HOST") or "127.0.0.1", int(params.get("PORT") or 5432))).start()
    env = {
        "PATH": "/usr/bin:/bin",
        "DB_CONNECTION_STRING": f"postgresql://{params['USER']}@127.0.0.1:{proxy.port}/{params['NAME']}",
        "REDIS_URL": redis_server.url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_SECRET": settings.JWT_SECRET,
        "REDIS_SOCKET_TIMEOUT": "0.5",
        "REDIS_BREAKER_FAILURES": "2",
        "REDIS_BREAKER_RESET": "0.5",
        "DB_POOL_TIMEOUT": "1",
        "DB_CONN_MAX_AGE": "0",
        "RATE_LIMIT_PER_USER": "100000",
        "RATE_LIMIT_GLOBAL": "1000000",
        # This test is about faults, not fraud: no flags, no reviews holding the actions.
        "SUSPICIOUS_VELOCITY_THRESHOLD": "1000000000",
        "MANUAL_REVIEW_THRESHOLD": "1000000000",
        "LOG_LEVEL": "WARNING",
    }
    servers = [ServerProcess(port=free_port(), env=env) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers, redis_server, proxy
    finally:
        for server in servers:
            server.stop()
        proxy.stop()
        redis_server.stop()


class Traffic:
    """Clients posting updates (each to one server, alternating) and reading the board."""

    def __init__(self, servers, tokens: dict[int, str]) -> None:
        self.servers = servers
        self.tokens = tokens
        self.results: list[tuple[str, int, int, dict | None]] = []  # (kind, user, status, body)
        self.answered: dict[str, tuple[int, int]] = {}  # action_id -> (user, points) answered 200
        self.refused: list[tuple[int, dict]] = []  # 503s, retried after the faults
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self.client, args=(number,), daemon=True) for number in range(len(tokens))
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def send(self, server, user: int, action: dict) -> int:
        try:
            status, body = server.request("POST", "/api/scores", action, self.tokens[user])
        except OSError as error:  # the connection itself failed: a 5xx as far as a client knows
            status, body = 599, {"error": repr(error)}
        with self.lock:
            self.results.append(("post", user, status, body))
            if status == 200:
                self.answered[action["action_id"]] = (user, action["points"])
            elif status == 503:
                self.refused.append((user, action))
        return status

    def client(self, number: int) -> None:
        user = list(self.tokens)[number]
        turn = 0
        while not self.stop.is_set():
            server = self.servers[turn % len(self.servers)]
            turn += 1
            action = {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 1 + turn % 7}
            self.send(server, user, action)
            if turn % 5 == 0:
                status, body = server.request("GET", "/api/scoreboard")
                with self.lock:
                    self.results.append(("get", user, status, body))
            time.sleep(0.02)


def test_faults_in_the_middle_of_traffic_lose_and_double_nothing(stack, make_user, login, action_types):
    servers, redis_server, proxy = stack
    users = [make_user() for _ in range(4)]
    tokens = {user.id: login(user)["access"] for user in users}
    traffic = Traffic(servers, tokens)
    traffic.start()
    try:
        time.sleep(1.5)
        redis_server.stop()  # Redis dies (and, unpersisted, forgets everything)
        time.sleep(2.5)
        redis_server.start()
        time.sleep(2.5)
        proxy.cut()  # the database becomes unreachable
        time.sleep(2.0)
        proxy.restore()
        time.sleep(2.5)
    finally:
        traffic.finish()

    statuses = Counter((kind, status) for kind, _, status, _ in traffic.results)
    print("answers:", dict(statuses))  # shown with -s, for the record
    logs = "".join(server.log.read_text(errors="replace") for server in servers)
    assert "circuit open" in logs and "circuit closed" in logs  # Redis was really skipped, then back
    assert set(status for _, status in statuses) <= {200, 503}, statuses
    assert statuses[("post", 200)] > 50 and statuses[("post", 503)] >= 1, statuses
    # A 503 says so in the error shape, with retry_after.
    for _kind, _, status, body in traffic.results:
        if status == 503:
            assert body["error_code"] == "SERVICE_UNAVAILABLE" and body["retry_after"] >= 1, body

    # The clients retry what was refused, as API.md section 5 invites them to.
    for user, action in traffic.refused:
        assert traffic.send(servers[0], user, action) == 200

    history = dict(ScoreHistory.objects.values_list("action_id", "points"))
    assert history == {action_id: points for action_id, (_, points) in traffic.answered.items()}
    totals = dict(Score.objects.values_list("user_id", "total_score"))
    sums = dict(ScoreHistory.objects.values("user_id").annotate(s=Sum("points")).values_list("user_id", "s"))
    assert totals == sums
    expected = Counter()
    for user, points in traffic.answered.values():
        expected[user] += points
    assert totals == dict(expected)

    # The ranking index was rebuilt after Redis came back and equals the database.
    client = redis.Redis.from_url(redis_server.url())
    database = dict(ranked_scores().values_list("user_id", "total_score"))

    def index() -> dict[int, int]:
        return {int(u): int(s) for u, s in client.zrange(board_keys().index, 0, -1, withscores=True)}

    deadline = time.monotonic() + 15
    while index() != database and time.monotonic() < deadline:
        time.sleep(0.2)
    assert index() == database
    status, board = servers[1].request("GET", "/api/scoreboard")
    assert status == 200 and [entry["score"] for entry in board["leaderboard"]] == sorted(
        database.values(), reverse=True
    )
