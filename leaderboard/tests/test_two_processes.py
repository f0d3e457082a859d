"""Two real server processes sharing PostgreSQL and Redis behave as one: a socket on one
sees what a POST on the other changed. A real WebSocket client (the websockets library)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest
import websockets
from django.conf import settings
from django.db import connection

from leaderboard.tests.browser import ServerProcess, database_url_for, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(request):
    env = {
        **os.environ,
        "DB_CONNECTION_STRING": database_url_for(connection.settings_dict["NAME"]),
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_SECRET": settings.JWT_SECRET,
        "WS_BROADCAST_INTERVAL": "0.05",
        **getattr(request, "param", {}),
    }
    pair = [ServerProcess(port=free_port(), env=env) for _ in range(2)]
    try:
        for server in pair:
            server.start()
        yield pair
    finally:
        for server in pair:
            server.stop()


def credit(server: ServerProcess, token: str, points: int) -> dict:
    status, body = server.request(
        "POST",
        "/api/scores",
        {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": points},
        token,
    )
    assert status == 200, body
    return body


async def next_of(socket, kind: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == kind:
                return message


def test_a_post_on_one_process_reaches_a_socket_on_the_other(servers, make_user, login, action_types):
    a, b = servers
    ada, bob = make_user("ada"), make_user("bob")
    ada_token, bob_token = login(ada)["access"], login(bob)["access"]
    ws_url = a.url.replace("http", "ws") + "/ws/scoreboard"

    async def journey():
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": f"Bearer {ada_token}"}
        ) as socket:
            snapshot = await next_of(socket, "LEADERBOARD_UPDATE")
            assert snapshot["data"]["leaderboard"] == []

            await asyncio.to_thread(credit, b, ada_token, 30)  # served by the other process
            mine = await next_of(socket, "SCORE_UPDATE")
            assert mine["data"] == {"new_score": 30, "rank": 1, "points_gained": 30}
            board = await next_of(socket, "LEADERBOARD_UPDATE")
            assert [(e["username"], e["score"]) for e in board["data"]["leaderboard"]] == [("ada", 30)]
            assert board["seq"] > snapshot["seq"]

            await asyncio.to_thread(credit, b, bob_token, 50)
            board = await next_of(socket, "LEADERBOARD_UPDATE")
            assert [(e["username"], e["rank"]) for e in board["data"]["leaderboard"]] == [
                ("bob", 1),
                ("ada", 2),
            ]
            assert board["data"]["changed_ranks"] == [1, 2]

            # Both processes serve the same board at once.
            for server in (a, b):
                status, body = await asyncio.to_thread(server.request, "GET", "/api/scoreboard")
                assert status == 200 and body["total_players"] == 2

            # A logout on the other process closes this socket.
            status, _ = await asyncio.to_thread(b.request, "POST", "/api/auth/logout", None, ada_token)
            assert status == 204
            async with asyncio.timeout(10):
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await socket.recv()
            assert closed.value.rcvd.code == 4401

    asyncio.run(journey())


@pytest.mark.parametrize("servers", [{"RATE_LIMIT_PER_USER": "3", "RATE_LIMIT_WINDOW": "60"}], indirect=True)
def test_a_players_rate_limit_holds_across_processes(servers, make_user, login, action_types):
    a, b = servers
    token = login(make_user("ada"))["access"]
    body = lambda: {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 1}  # noqa: E731
    statuses = [server.request("POST", "/api/scores", body(), token)[0] for server in (a, b, a, b)]
    assert statuses == [200, 200, 200, 429]
    status, refused = b.request("POST", "/api/scores", body(), token)
    assert status == 429 and refused["error_code"] == "RATE_LIMIT_EXCEEDED" and refused["retry_after"] >= 1
