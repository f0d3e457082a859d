"""The contract of POST /api/scores (API.md sections 1 and 5)."""

import json
import uuid

import pytest
from django.db import connection

from conftest import new_action
from scores.models import Score, ScoreHistory

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/scores"


def post(client, payload, **extra):
    return client.post(URL, data=json.dumps(payload), content_type="application/json", **extra)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"success", "error_code", "message", "retry_after", "details"}
    return body


@pytest.fixture
def player(make_user):
    return make_user()


@pytest.fixture
def client(client_for, player, action_types):
    return client_for(player)


def test_a_credited_action_answers_the_new_score_and_rank(client, player):
    response = post(client, new_action(points=10))
    assert response.status_code == 200
    assert response.json() == {"success": True, "user_id": player.id, "new_score": 10, "rank": 1}
    assert "Idempotent-Replayed" not in response
    assert Score.objects.get(user=player).total_score == 10
    assert ScoreHistory.objects.filter(user=player).count() == 1


def test_successive_actions_add_up(client, player):
    for points in (10, 20, 30):
        post(client, new_action(points=points))
    assert Score.objects.get(user=player).total_score == 60
    assert sum(ScoreHistory.objects.filter(user=player).values_list("points", flat=True)) == 60


def test_rank_is_the_competition_rank_among_all_players(client, player, make_user, client_for):
    for points in (50, 30):
        post(client_for(make_user()), new_action(points=points))
    assert post(client, new_action(points=40)).json()["rank"] == 2
    assert post(client, new_action(points=10)).json()["rank"] == 1  # 50, tied with the leader


def test_a_replay_answers_the_original_body_with_the_replay_header(client, player):
    action = new_action(points=25)
    first = post(client, action)
    post(client, new_action(points=5))
    again = post(client, action)
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Score.objects.get(user=player).total_score == 30
    assert ScoreHistory.objects.filter(action_id=action["action_id"]).count() == 1


def test_an_action_id_in_upper_case_is_the_same_action(client, player):
    action = new_action(points=25)
    post(client, action)
    again = post(client, {**action, "action_id": action["action_id"].upper()})
    assert again["Idempotent-Replayed"] == "true"
    assert Score.objects.get(user=player).total_score == 25


def test_same_action_id_with_a_different_body_is_a_409_and_changes_nothing(client, player):
    action = new_action(points=25)
    post(client, action)
    assert_error(post(client, {**action, "points": 26}), 409, "DUPLICATE_ACTION")
    assert_error(post(client, {**action, "action_type": "match_win", "points": 25}), 409, "DUPLICATE_ACTION")
    assert Score.objects.get(user=player).total_score == 25


def test_same_action_id_from_another_user_is_a_409_and_changes_nothing(client, make_user, client_for):
    action = new_action(points=25)
    post(client, action)
    thief = make_user()
    assert_error(post(client_for(thief), action), 409, "DUPLICATE_ACTION")
    assert not Score.objects.filter(user=thief).exists()


def test_fields_the_client_must_not_control_are_ignored(client, player, make_user):
    other = make_user()
    action = new_action(points=10, user_id=other.id, total_score=10**9, is_staff=True, new_score=5)
    response = post(client, action)
    assert response.json() == {"success": True, "user_id": player.id, "new_score": 10, "rank": 1}
    assert not Score.objects.filter(user=other).exists()


@pytest.mark.parametrize(
    "raw",
    [b"{bad json", b"", b"[]", b'"text"', b"null", b'{"action_id": NaN}', b"\xff\xfe"],
    ids=["broken", "empty", "array", "string", "null", "nan", "not-utf8"],
)
def test_malformed_bodies_are_400_and_write_nothing(client, raw):
    response = client.post(URL, data=raw, content_type="application/json")
    assert_error(response, 400, "INVALID_ACTION")
    assert ScoreHistory.objects.count() == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"points": "10"}, "points"),
        ({"points": 10.0}, "points"),
        ({"points": True}, "points"),
        ({"action_id": 42}, "action_id"),
        ({"action_id": "nope"}, "action_id"),
        ({"action_type": 3}, "action_type"),
        ({"action_type": "no_such_type"}, "action_type"),
        ({"points": 0}, "points"),
        ({"points": 101}, "points"),
        ({"points": -1}, "points"),
        ({"points": 2**63}, "points"),
    ],
)
def test_ill_typed_or_out_of_bounds_fields_are_400_naming_the_field(client, change, field):
    body = assert_error(post(client, {**new_action(), **change}), 400, "INVALID_ACTION")
    assert set(body["details"]) == {field}
    assert ScoreHistory.objects.count() == 0


def test_the_bounds_message_names_the_limits(client):
    body = assert_error(post(client, new_action(points=101)), 400, "INVALID_ACTION")
    assert body["details"] == {"points": "must be between 1 and 100 for action type 'quest'"}


def test_max_points_per_action_caps_every_type(client, settings):
    settings.MAX_POINTS_PER_ACTION = 60
    body = assert_error(post(client, new_action("level_up", points=61)), 400, "INVALID_ACTION")
    assert body["details"] == {"points": "must be between 50 and 60 for action type 'level_up'"}


def test_a_disabled_action_type_is_refused(client):
    from scores.models import ActionType
    from scores.selectors import action_rules_forget

    ActionType.objects.filter(name="quest").update(enabled=False)
    action_rules_forget()
    assert_error(post(client, new_action()), 400, "INVALID_ACTION")


def test_a_body_over_16_kib_is_413(client):
    action = new_action(padding="x" * (16 * 1024))
    assert_error(post(client, action), 413, "PAYLOAD_TOO_LARGE")
    assert ScoreHistory.objects.count() == 0


def test_a_non_json_content_type_is_400(client):
    response = client.post(URL, data="action_id=1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 400, "INVALID_ACTION")


def test_answers_are_json_whatever_the_accept_header_says(client):
    response = post(client, new_action(), HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    error = post(client, {"bad": 1}, HTTP_ACCEPT="text/html")
    assert_error(error, 400, "INVALID_ACTION")


def test_without_a_token_it_is_401_with_www_authenticate(api, action_types):
    response = post(api, new_action())
    assert_error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_other_methods_are_405(client):
    assert_error(client.get(URL), 405, "METHOD_NOT_ALLOWED")
    assert_error(client.put(URL, data="{}", content_type="application/json"), 405, "METHOD_NOT_ALLOWED")


def test_unknown_paths_and_missing_static_files_are_json_404(api):
    assert_error(api.get("/api/nothing-here", HTTP_ACCEPT="text/html"), 404, "NOT_FOUND")
    assert_error(api.get("/no/such/page"), 404, "NOT_FOUND")


def test_a_post_to_an_unknown_path_is_404_even_with_csrf_checks():
    """An API client sends no CSRF cookie: the catch-all must still say 404, not 403."""
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert_error(strict.post("/api/auth/login", data="{}", content_type="application/json"), 404, "NOT_FOUND")
    assert_error(strict.post("/no/such/page"), 404, "NOT_FOUND")


@pytest.mark.postgres
def test_a_credit_is_one_sql_statement_on_postgresql(client, sql_log):
    post(client, new_action())  # warms the action-type and session caches
    log = sql_log()
    assert post(client, new_action()).status_code == 200
    assert len(log.queries) == 1 + (0 if settings_redis() else 2), log.queries
    assert any(sql.lstrip().startswith("WITH input AS") for sql in log.queries)


def settings_redis() -> bool:
    from django.conf import settings

    return bool(settings.REDIS_URL)


def test_without_redis_a_credit_reads_session_and_rank_from_the_database(client, settings, sql_log):
    settings.REDIS_URL = ""
    post(client, new_action())
    log = sql_log()
    assert post(client, new_action()).status_code == 200
    # The session check, the credit (one statement, or two in one SQLite transaction), the rank.
    queries = log.queries
    assert "login_session" in queries[0]
    assert queries[-1].startswith("SELECT COUNT(*)")
    assert len(queries) == (3 if connection.vendor == "postgresql" else 4), queries


@pytest.fixture
def hot(asgi, login, player, action_types):
    """POST /api/scores through the production door, as this player."""
    headers = {"Authorization": f"Bearer {login(player)['access']}", "Content-Type": "application/json"}
    return lambda payload: asgi("POST", URL, json.dumps(payload).encode(), headers)


@pytest.mark.redis
def test_a_credit_costs_two_redis_round_trips(hot, redis_log):
    hot(new_action())  # warms the session cache and loads the Lua scripts
    log = redis_log()
    assert hot(new_action()).status_code == 200
    assert log.count == 2  # session + rate limits, then rank + index + replay answer


@pytest.mark.redis
def test_a_replay_costs_two_redis_round_trips(hot, redis_log):
    action = new_action()
    hot(action)
    log = redis_log()
    assert hot(action)["Idempotent-Replayed"] == "true"
    assert log.count == 2  # session + rate limits, then the remembered answer


def test_replay_without_a_remembered_answer_reports_the_current_standing(client, player, settings):
    from django.core.cache import cache

    from scoreboard_project.redis import redis_client

    action = new_action(points=40)
    post(client, action)
    # Forget the remembered answer, as if it expired.
    key = f"idem:{action['action_id']}"
    if redis_client() is not None:
        redis_client().delete(key)
    cache.delete(key)
    again = post(client, action)
    assert again.json() == {"success": True, "user_id": player.id, "new_score": 40, "rank": 1}
    assert again["Idempotent-Replayed"] == "true"


def test_action_ids_are_unique_forever_across_users(make_user, client_for, action_types):
    action_id = str(uuid.uuid4())
    first, second = make_user(), make_user()
    post(client_for(first), {"action_id": action_id, "action_type": "quest", "points": 5})
    response = post(client_for(second), {"action_id": action_id, "action_type": "quest", "points": 5})
    assert_error(response, 409, "DUPLICATE_ACTION")


def test_framework_error_pages_become_json(api):
    assert_error(api.post("/", data="{}", content_type="application/json"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api.delete("/api/docs/"), 405, "METHOD_NOT_ALLOWED")
