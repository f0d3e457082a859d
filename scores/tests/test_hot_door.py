"""The production door: POST /api/scores, the batch and GET /api/scoreboard through the
ASGI application, as the server runs them."""

import json

import pytest
from asgiref.sync import SyncToAsync

from accounts.services import service_account_create, service_token_create
from conftest import new_action
from scores.models import Score, ScoreHistory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def player(make_user):
    return make_user()


@pytest.fixture
def bearer(login, player, action_types):
    return {"Authorization": f"Bearer {login(player)['access']}", "Content-Type": "application/json"}


@pytest.fixture
def service_headers(django_db_blocker):
    with django_db_blocker.unblock():
        account = service_account_create(name="game-server")
        token = service_token_create(account=account)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def send(asgi, headers, payload, path="/api/scores"):
    return asgi("POST", path, json.dumps(payload).encode(), headers)


def error_code(response) -> str:
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    return body["error_code"]


def test_a_credit_through_the_hot_door(asgi, bearer, player):
    action = new_action(points=12)
    first = send(asgi, bearer, action)
    assert first.status_code == 200
    assert first.json() == {"success": True, "user_id": player.id, "new_score": 12, "rank": 1}
    assert "Idempotent-Replayed" not in first
    again = send(asgi, bearer, action)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert error_code(send(asgi, bearer, {**action, "points": 13})) == "DUPLICATE_ACTION"
    assert Score.objects.get(user=player).total_score == 12


def test_the_history_row_keeps_the_client_address(asgi, bearer, player, settings):
    send(asgi, {**bearer, "X-Forwarded-For": "203.0.113.9"}, new_action())
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    send(asgi, {**bearer, "X-Forwarded-For": "198.51.100.4, 203.0.113.9"}, new_action())
    send(asgi, {**bearer, "X-Forwarded-For": "not-an-address"}, new_action())
    addresses = list(
        ScoreHistory.objects.filter(user=player).order_by("id").values_list("client_ip", flat=True)
    )
    # An untrusted peer's header is ignored; a trusted proxy's names the client; garbage is dropped.
    assert addresses == ["127.0.0.1", "203.0.113.9", None]


@pytest.mark.postgres  # on SQLite the ledger runs in a worker thread by design
def test_the_hot_door_makes_no_thread_hop_on_a_warm_credit(asgi, bearer, monkeypatch):
    send(asgi, bearer, new_action())  # warms the session and action-type caches
    asgi("GET", "/api/scoreboard")  # and the names behind the board
    hops = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(self.func)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    assert send(asgi, bearer, new_action()).status_code == 200
    assert asgi("GET", "/api/scoreboard").status_code == 200
    assert hops == []


@pytest.mark.parametrize(
    "body, headers, status, code",
    [
        (b"{bad", {}, 400, "INVALID_ACTION"),
        (b'{"action_id": NaN}', {}, 400, "INVALID_ACTION"),
        (b"[]", {}, 400, "INVALID_ACTION"),
        (b"\xff", {}, 400, "INVALID_ACTION"),
        (b"{}", {"Content-Type": "text/plain"}, 400, "INVALID_ACTION"),
        (b"x" * (16 * 1024 + 1), {}, 413, "PAYLOAD_TOO_LARGE"),
        (b"{}", {"Host": "evil.example"}, 400, "INVALID_ACTION"),
    ],
    ids=["broken", "nan", "array", "not-utf8", "text-plain", "too-large", "foreign-host"],
)
def test_bad_requests_get_the_json_error_shape(asgi, bearer, body, headers, status, code):
    response = asgi("POST", "/api/scores", body, {**bearer, **headers})
    assert response.status_code == status
    assert error_code(response) == code
    assert ScoreHistory.objects.count() == 0


def test_no_token_is_401_with_www_authenticate(asgi, action_types):
    response = asgi("POST", "/api/scores", b"{}", {"Content-Type": "application/json"})
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_hot_board_is_the_django_board(asgi, api, bearer):
    send(asgi, bearer, new_action(points=30))
    hot = asgi("GET", "/api/scoreboard")
    assert hot.status_code == 200 and hot["Content-Type"] == "application/json"
    assert hot.json() == api.get("/api/scoreboard").json()
    assert hot.json()["leaderboard"][0]["score"] == 30


def test_other_methods_fall_through_to_django(asgi, bearer):
    response = asgi("GET", "/api/scores", b"", bearer)
    assert response.status_code == 405 and error_code(response) == "METHOD_NOT_ALLOWED"


def test_a_batch_credits_many_players_and_answers_each_item(asgi, make_user, action_types, service_headers):
    ada, bob = make_user("ada"), make_user("bob")
    items = [
        {"user_id": ada.id, **new_action(points=10)},
        {"user_id": bob.id, **new_action(points=20)},
        {"user_id": ada.id, **new_action(points=5)},
        {"user_id": bob.id, **new_action(points=500)},
        {"user_id": 987654, **new_action(points=5)},
        {"user_id": "1", **new_action(points=5)},
    ]
    response = send(asgi, service_headers, {"actions": items}, "/api/scores/batch")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == [200, 200, 200, 400, 400, 400]
    assert results[0] == {
        "action_id": items[0]["action_id"],
        "status": 200,
        "success": True,
        "user_id": ada.id,
        "new_score": 10,
        "rank": 2,
    }
    assert results[2]["new_score"] == 15 and results[1]["new_score"] == 20
    assert results[3]["details"] == {"points": "must be between 1 and 100 for action type 'quest'"}
    assert results[4]["details"] == {"user_id": "unknown, inactive or suspended player"}
    assert results[5]["details"] == {"user_id": "must be a positive JSON integer"}
    assert dict(Score.objects.values_list("user__username", "total_score")) == {"ada": 15, "bob": 20}

    again = send(asgi, service_headers, {"actions": items[:3]}, "/api/scores/batch").json()["results"]
    assert [result.get("replayed") for result in again] == [True, True, True]
    assert [result["new_score"] for result in again] == [10, 20, 15]
    assert Score.objects.get(user=ada).total_score == 15


def test_a_batch_of_five_hundred_fits_and_more_is_refused(asgi, make_user, action_types, service_headers):
    players = [make_user() for _ in range(50)]
    items = [{"user_id": players[n % 50].id, **new_action(points=1 + n % 100)} for n in range(500)]
    response = send(asgi, service_headers, {"actions": items}, "/api/scores/batch")
    assert response.status_code == 200
    assert {result["status"] for result in response.json()["results"]} == {200}
    assert ScoreHistory.objects.count() == 500
    too_many = send(asgi, service_headers, {"actions": items + items[:1]}, "/api/scores/batch")
    assert too_many.status_code == 400 and error_code(too_many) == "INVALID_ACTION"


def test_a_player_token_cannot_submit_batches(asgi, bearer, player):
    response = send(asgi, bearer, {"actions": [{"user_id": player.id, **new_action()}]}, "/api/scores/batch")
    assert response.status_code == 403 and error_code(response) == "FORBIDDEN"


def test_a_disabled_service_account_is_refused_at_once(asgi, service_headers, make_user, action_types):
    from accounts.models import ServiceAccount
    from accounts.services import service_account_set_enabled

    service_account_set_enabled(account=ServiceAccount.objects.get(name="game-server"), enabled=False)
    response = send(
        asgi, service_headers, {"actions": [{"user_id": make_user().id, **new_action()}]}, "/api/scores/batch"
    )
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"


def test_a_chunked_body_over_the_limit_is_413_on_django_paths_too(asgi):
    # No Content-Length: the size is only known while reading.
    import asyncio

    from scoreboard_project import aio
    from scoreboard_project.asgi import application

    async def call():
        chunks = [{"type": "http.request", "body": b"x" * 8192, "more_body": True} for _ in range(3)]
        chunks.append({"type": "http.request", "body": b"", "more_body": False})
        sent = []

        async def receive():
            return chunks.pop(0) if chunks else await asyncio.Event().wait()

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/auth/token",
            "headers": [(b"host", b"127.0.0.1")],
            "query_string": b"",
            "root_path": "",
            "scheme": "http",
            "http_version": "1.1",
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "asgi": {"version": "3.0"},
        }
        await application(scope, receive, send)
        return sent

    sent = aio.run(call())
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error_code"] == "PAYLOAD_TOO_LARGE"


def test_a_batch_holds_the_actions_of_a_player_under_review(asgi, make_user, action_types, service_headers):
    from antifraud.models import HeldAction
    from antifraud.services import review_open

    ada, bob = make_user("ada"), make_user("bob")
    review_open(user_id=ada.id, reason="big gains")
    held, counted, bad = new_action(points=10), new_action(points=20), new_action(points=500)
    items = [{"user_id": ada.id, **held}, {"user_id": bob.id, **counted}, {"user_id": ada.id, **bad}]
    results = send(asgi, service_headers, {"actions": items}, "/api/scores/batch").json()["results"]
    assert [result["status"] for result in results] == [202, 200, 400]
    assert results[0]["pending_review"] is True and results[0]["new_score"] == 0
    assert HeldAction.objects.get(user=ada).action_id == held["action_id"]
    assert not Score.objects.filter(user=ada).exists() and Score.objects.get(user=bob).total_score == 20
    again = send(asgi, service_headers, {"actions": items[:1]}, "/api/scores/batch").json()["results"]
    assert again[0]["status"] == 202 and again[0].get("replayed") is True
