"""Score-update rate limits: sliding windows per player and for everyone (API.md section 5)."""

import json
import time

import pytest

from conftest import new_action
from scores.models import ScoreHistory

pytestmark = [pytest.mark.ratelimits, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def limits(settings):
    def configure(*, per_user: int, window: int, everyone: int = 1_000_000):
        settings.RATE_LIMIT_PER_USER = per_user
        settings.RATE_LIMIT_WINDOW = window
        settings.RATE_LIMIT_GLOBAL = everyone

    return configure


@pytest.fixture
def post(asgi, login, action_types):
    def send(user, **action):
        token = login(user)["access"] if not hasattr(user, "token") else user.token
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return asgi("POST", "/api/scores", json.dumps(new_action(**action)).encode(), headers)

    return send


@pytest.fixture
def player(make_user, login):
    user = make_user()
    user.token = login(user)["access"]
    return user


def test_the_fourth_update_in_the_window_is_refused_with_exact_headers(limits, player, post):
    limits(per_user=3, window=60)
    answers = [post(player) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[0]["RateLimit-Policy"] == '"player";q=3;w=60'
    assert [answer["RateLimit"].split(";")[1] for answer in answers[:3]] == ["r=2", "r=1", "r=0"]
    refused = answers[3]
    body = refused.json()
    assert body["error_code"] == "RATE_LIMIT_EXCEEDED" and body["success"] is False
    assert 58 <= body["retry_after"] <= 60
    assert refused["Retry-After"] == str(body["retry_after"])
    assert refused["RateLimit"] == f'"player";r=0;t={body["retry_after"]}'
    assert ScoreHistory.objects.count() == 3


def test_the_window_slides_rather_than_resetting(limits, player, post):
    limits(per_user=3, window=2)
    start = time.monotonic()
    assert [post(player).status_code for _ in range(2)] == [200, 200]
    time.sleep(max(0, start + 1.0 - time.monotonic()))
    assert post(player).status_code == 200
    assert post(player).status_code == 429
    time.sleep(max(0, start + 2.2 - time.monotonic()))
    # The first two left the window; the third is still in it: two more, not three.
    assert [post(player).status_code for _ in range(3)] == [200, 200, 429]


def test_the_wait_told_is_enough(limits, player, post):
    limits(per_user=1, window=2)
    assert post(player).status_code == 200
    refused = post(player)
    assert refused.status_code == 429
    time.sleep(refused.json()["retry_after"])
    assert post(player).status_code == 200


def test_the_global_limit_counts_every_player(limits, make_user, login, post):
    limits(per_user=10, window=60, everyone=2)
    players = [make_user() for _ in range(3)]
    for user in players:
        user.token = login(user)["access"]
    answers = [post(user) for user in players]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "service" in answers[2].json()["message"]


def test_a_refused_session_is_not_counted(limits, player, post):
    from accounts.services import session_revoke
    from accounts.tokens import access_token_verify

    limits(per_user=1, window=60)
    session_revoke(sid=access_token_verify(player.token).sid)
    assert post(player).status_code == 401
    assert post(player).status_code == 401  # still 401, never 429: nothing was counted


def test_the_drf_door_applies_the_same_limits(limits, client_for, player, action_types):
    limits(per_user=2, window=60)
    client = client_for(player)
    answers = [
        client.post("/api/scores", data=json.dumps(new_action()), content_type="application/json")
        for _ in range(3)
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["error_code"] == "RATE_LIMIT_EXCEEDED"


def test_an_action_type_can_have_its_own_limit(limits, player, post):
    from scores.models import ActionType
    from scores.selectors import action_rules_forget

    limits(per_user=10, window=30)
    ActionType.objects.filter(name="level_up").update(rate_per_window=2)
    action_rules_forget()
    assert [post(player, action_type="level_up", points=60).status_code for _ in range(2)] == [200, 200]
    refused = post(player, action_type="level_up", points=60)
    assert refused.status_code == 429 and "action type" in refused.json()["message"]
    assert 28 <= refused.json()["retry_after"] <= 30
    # Other types still count against the player's own limit only.
    assert post(player, action_type="quest", points=5).status_code == 200
    assert ScoreHistory.objects.filter(user=player, action_type="level_up").count() == 2


@pytest.mark.redis
def test_updates_admitted_by_one_script_call_share_the_global_limit(limits, make_user, monkeypatch):
    """Concurrent updates are admitted by one call of the admission script, which counts the
    global log once for all of them: exactly the limit is admitted, the rest wait for the
    oldest entry, and the next call sees the entries the first one added."""
    import asyncio
    import uuid

    from antifraud import ratelimits
    from antifraud.rules import rule_states_async
    from scoreboard_project import aio
    from scoreboard_project.redis import redis_client

    limits(per_user=10, window=60, everyone=3)
    players = [make_user() for _ in range(5)]
    calls = []
    script = ratelimits._admit_script

    async def counted(client, keys, args):
        calls.append(len(args) - 11)  # the requests in this call
        return await script(client, keys, args)

    monkeypatch.setattr(ratelimits, "_admit_script", counted)
    states = aio.run(rule_states_async())

    async def admit_all(users):
        return await asyncio.gather(
            *(
                ratelimits.admit(
                    sid=str(uuid.uuid4()),
                    user_id=user.id,
                    trusted=True,
                    action_id=str(uuid.uuid4()),
                    points=1,
                    kind="quest",
                    states=states,
                )
                for user in users
            )
        )

    first = aio.run(admit_all(players))
    assert calls == [5]
    assert [admission.verdict for admission in first] == ["ok", "ok", "ok", "global", "global"]
    assert all(58_000 <= admission.retry_ms <= 60_000 for admission in first[3:])
    assert redis_client().zcard(ratelimits.GLOBAL_KEY) == 3
    second = aio.run(admit_all(players[:1]))
    assert [admission.verdict for admission in second] == ["global"]
