"""Progressive penalties and bans: suspended players are refused and ranked nowhere."""

import json
import time

import pytest
from channels.testing import WebsocketCommunicator

from antifraud.models import Ban
from antifraud.services import ban_create, ban_lift, bans_restore
from conftest import new_action
from scoreboard_project import aio

pytestmark = [pytest.mark.ratelimits, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ladder(settings):
    settings.RATE_LIMIT_PER_USER = 1
    settings.RATE_LIMIT_WINDOW = 1
    settings.RATE_LIMIT_GLOBAL = 1_000_000
    settings.PENALTY_VIOLATIONS = 2
    settings.PENALTY_PERIOD = 60
    settings.PENALTY_STEPS = [2, 4]


@pytest.fixture
def player(make_user, login, action_types):
    user = make_user("cheater")
    user.token = login(user)["access"]
    return user


def post(asgi, user, points=10):
    headers = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json"}
    return asgi("POST", "/api/scores", json.dumps(new_action(points=points)).encode(), headers)


def board_names(asgi) -> tuple[list[str], int]:
    body = asgi("GET", "/api/scoreboard").json()
    return [entry["username"] for entry in body["leaderboard"]], body["total_players"]


def test_repeated_violations_climb_the_penalty_ladder(asgi, ladder, player, make_user, login):
    honest = make_user("honest")
    honest.token = login(honest)["access"]
    assert post(asgi, honest, 5).status_code == 200
    assert post(asgi, player, 50).status_code == 200
    assert board_names(asgi) == (["cheater", "honest"], 2)

    assert post(asgi, player).status_code == 429  # first violation
    banned = post(asgi, player)  # the second bans: step 1 of the ladder, 2 s
    assert banned.status_code == 403
    assert banned.json()["error_code"] == "ACCOUNT_SUSPENDED" and banned.json()["retry_after"] == 2
    assert banned["Retry-After"] == "2"
    again = post(asgi, player)
    assert again.status_code == 403 and again.json()["error_code"] == "ACCOUNT_SUSPENDED"
    ban = Ban.objects.get(user=player)
    assert (ban.source, ban.level) == (Ban.AUTOMATIC, 1)
    assert board_names(asgi) == (["honest"], 1)  # banned players appear nowhere

    time.sleep(2.2)
    assert bans_restore() == 1
    assert board_names(asgi) == (["cheater", "honest"], 2)
    assert post(asgi, player).status_code == 200
    assert post(asgi, player).status_code == 429
    second = post(asgi, player)
    assert second.status_code == 403 and second.json()["retry_after"] == 4  # the next step
    assert list(Ban.objects.filter(user=player).values_list("level", flat=True)) == [2, 1]


def test_a_moderator_ban_refuses_scores_sockets_and_batches_until_lifted(asgi, player, django_db_blocker):
    assert post(asgi, player).status_code == 200

    async def open_socket():
        from scoreboard_project.asgi import application

        socket = WebsocketCommunicator(
            application, "/ws/scoreboard", headers=[(b"authorization", f"Bearer {player.token}".encode())]
        )
        assert (await socket.connect(timeout=5))[0]
        await socket.receive_json_from(timeout=5)
        return socket

    socket = aio.run(open_socket())
    ban = ban_create(user_id=player.id, seconds=600, reason="bot-like timing")

    async def closed_code(socket):
        while True:
            message = await socket.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                await socket.disconnect()
                return message["code"]

    assert aio.run(closed_code(socket)) == 4403
    refused = post(asgi, player)
    assert refused.status_code == 403 and refused.json()["error_code"] == "ACCOUNT_SUSPENDED"
    assert board_names(asgi) == ([], 0)

    async def refused_socket():
        from scoreboard_project.asgi import application

        socket = WebsocketCommunicator(
            application, "/ws/scoreboard", headers=[(b"authorization", f"Bearer {player.token}".encode())]
        )
        await socket.connect(timeout=5)
        return await closed_code(socket)

    assert aio.run(refused_socket()) == 4403

    ban_lift(ban=ban)
    assert post(asgi, player).status_code == 200
    assert board_names(asgi) == (["cheater"], 1)


@pytest.mark.redis
def test_bans_and_reviews_come_back_after_redis_lost_them(asgi, player, django_db_blocker, settings):
    from antifraud.services import bans_sync, review_open, reviews_sync
    from scoreboard_project.redis import redis_client

    other = player
    with django_db_blocker.unblock():
        ban_create(user_id=other.id, seconds=600, reason="bot")
    assert post(asgi, other).status_code == 403
    redis_client().flushdb()  # Redis restarted empty
    assert bans_sync() == 1
    refused = post(asgi, other)
    assert refused.status_code == 403 and 590 <= refused.json()["retry_after"] <= 600
    with django_db_blocker.unblock():
        from antifraud.models import Ban

        ban_lift(ban=Ban.objects.get(user=other))
        review_open(user_id=other.id, reason="big gains")
    redis_client().flushdb()
    redis_client().set("review:999999", "1")  # a mark whose review is over (a failed unmark)
    assert reviews_sync() == 1
    assert post(asgi, other).status_code == 202  # held again: the review is known
    assert redis_client().get("review:999999") is None


def test_without_redis_each_process_enforces_the_bans_in_the_database(
    asgi, player, monkeypatch, django_db_blocker
):
    """The fallback (no Redis, or its breaker open): bans placed by other processes or
    earlier runs are read from the database, not only those this process placed."""
    from datetime import timedelta

    from django.utils import timezone

    from antifraud.models import Ban

    monkeypatch.setattr(aio, "async_redis", lambda: None)
    with django_db_blocker.unblock():
        Ban.objects.create(
            user=player,
            reason="elsewhere",
            source=Ban.MODERATOR,
            ends_at=timezone.now() + timedelta(minutes=5),
        )
    refused = post(asgi, player)
    assert refused.status_code == 403 and refused.json()["error_code"] == "ACCOUNT_SUSPENDED"
    assert 290 <= refused.json()["retry_after"] <= 300
