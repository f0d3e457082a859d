"""GET /api/scoreboard and the ranking index (API.md section 2)."""

import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.services import user_set_active
from conftest import new_action
from leaderboard.board import local_board_invalidate
from leaderboard.ranking import NAMES_KEY, BoardKeys, scripts_for
from leaderboard.selectors import leaderboard_top, leaderboard_top_from_db, user_rank, user_rank_from_db
from leaderboard.services import Record, leaderboard_record
from scoreboard_project import aio
from scoreboard_project.redis import redis_client
from scores.models import Score

pytestmark = pytest.mark.django_db(transaction=True)
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
KEYS = BoardKeys.for_board("global")


@pytest.fixture
def score(client_for, action_types):
    """Credit points to a player through the API; return the response body."""

    def credit(user, points, action_type="quest"):
        response = client_for(user).post(
            "/api/scores", data=json.dumps(new_action(action_type, points)), content_type="application/json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    return credit


def board(api):
    response = api.get("/api/scoreboard")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def standings(body):
    return [(entry["username"], entry["score"], entry["rank"]) for entry in body["leaderboard"]]


def test_an_empty_board(api):
    assert board(api) == {"leaderboard": [], "last_updated": None, "total_players": 0}


def test_the_board_has_the_exact_shape(api, make_user, score):
    ada = make_user("ada")
    score(ada, 40)
    body = board(api)
    assert set(body) == {"leaderboard", "last_updated", "total_players"}
    (entry,) = body["leaderboard"]
    assert set(entry) == {"rank", "user_id", "username", "score", "last_updated"}
    assert (entry["rank"], entry["user_id"], entry["username"], entry["score"]) == (1, ada.id, "ada", 40)
    assert ISO.match(entry["last_updated"]) and ISO.match(body["last_updated"])
    assert body["last_updated"] == entry["last_updated"]
    assert body["total_players"] == 1


def test_ties_share_a_competition_rank_and_the_first_to_reach_the_score_leads(api, make_user, score):
    first, second, leader, last = (make_user(name) for name in ("first", "second", "leader", "last"))
    score(first, 100, "match_win")
    score(second, 100, "match_win")
    score(leader, 150, "match_win")
    score(last, 90, "match_win")
    assert standings(board(api)) == [
        ("leader", 150, 1),
        ("first", 100, 2),
        ("second", 100, 2),
        ("last", 90, 4),
    ]


def test_at_equal_score_and_time_the_lower_user_id_leads(api, make_user, score):
    low, high = make_user("low"), make_user("high")
    score(high, 50)
    score(low, 50)
    moment = timezone.now() - timedelta(minutes=1)
    Score.objects.update(updated_at=moment)
    call_command("rebuild_leaderboard")
    assert [entry["username"] for entry in board(api)["leaderboard"]] == ["low", "high"]
    assert [entry["username"] for entry in leaderboard_top_from_db()["leaderboard"]] == ["low", "high"]


def test_at_most_ten_entries_and_every_player_counted(api, make_user, score):
    players = [make_user(f"p{number:02d}") for number in range(12)]
    for number, player in enumerate(players):
        score(player, number + 1)
    body = board(api)
    assert len(body["leaderboard"]) == 10
    assert [entry["score"] for entry in body["leaderboard"]] == list(range(12, 2, -1))
    assert body["total_players"] == 12


def test_a_tie_at_the_tenth_place_keeps_the_earliest(api, make_user, score):
    players = [make_user(f"t{number:02d}") for number in range(12)]
    for player in players:
        score(player, 5)
    assert [entry["username"] for entry in board(api)["leaderboard"]] == [f"t{n:02d}" for n in range(10)]
    assert {entry["rank"] for entry in board(api)["leaderboard"]} == {1}


def test_the_board_reflects_every_accepted_update_at_once(api, make_user, score):
    ada, bob = make_user("ada"), make_user("bob")
    score(ada, 30)
    assert standings(board(api)) == [("ada", 30, 1)]
    score(bob, 50)
    assert standings(board(api)) == [("bob", 50, 1), ("ada", 30, 2)]
    score(ada, 40)
    assert standings(board(api)) == [("ada", 70, 1), ("bob", 50, 2)]


def test_total_players_counts_new_players_outside_the_top_ten(api, make_user, score):
    for number in range(10):
        score(make_user(), 90 + number)
    board(api)  # warm the cache
    score(make_user(), 1)
    assert board(api)["total_players"] == 11


def test_an_inactive_player_appears_nowhere_and_returns_when_reactivated(api, make_user, score):
    ada, bob = make_user("ada"), make_user("bob")
    score(ada, 90)
    score(bob, 10)
    board(api)
    user_set_active(user=ada, active=False)
    body = board(api)
    assert standings(body) == [("bob", 10, 1)]
    assert body["total_players"] == 1
    assert aio.run(user_rank(total=10)) == 1
    user_set_active(user=ada, active=True)
    assert standings(board(api)) == [("ada", 90, 1), ("bob", 10, 2)]


def test_the_credit_response_rank_agrees_with_the_board(api, make_user, score):
    for points in (60, 40, 40, 20):
        score(make_user(), points)
    body = score(make_user("me"), 40)
    entry = next(entry for entry in board(api)["leaderboard"] if entry["username"] == "me")
    assert body["rank"] == entry["rank"] == 2


@pytest.mark.redis
def test_a_warm_board_is_served_without_sql_or_redis(api, make_user, score, sql_log, redis_log):
    import time

    score(make_user(), 10)
    board(api)
    time.sleep(0.3)  # the credit's change announcement arrives by pub/sub, then all is quiet
    board(api)
    queries, trips = sql_log(), redis_log()
    board(api)
    assert queries.statements == [] and trips.count == 0


@pytest.mark.redis
def test_a_cold_board_is_built_from_redis_without_sql(api, score, sql_log):
    response = api.post(
        "/api/auth/register", data={"username": "ada", "password": "correct-Horse-battery-9"}, format="json"
    )
    assert response.status_code == 201  # registration publishes the name to Redis
    from accounts.models import User

    score(User.objects.get(username="ada"), 10)
    redis_client().delete(KEYS.top10)
    local_board_invalidate()
    log = sql_log()
    assert board(api)["total_players"] == 1
    assert log.statements == []


@pytest.mark.redis
def test_the_redis_board_equals_the_database_board(api, make_user, score):
    for number in range(15):
        score(make_user(), [5, 80, 80, 30, 99][number % 5])
    assert board(api) == leaderboard_top_from_db()


@pytest.mark.redis
def test_rebuild_makes_redis_agree_with_the_database_and_is_idempotent(api, make_user, score):
    players = [make_user() for _ in range(14)]
    for number, player in enumerate(players):
        score(player, 10 + (number * 37) % 90)
    client = redis_client()
    client.zadd(KEYS.index, {str(players[0].id): 10**6, "999999": 5})  # corrupt the index
    client.delete(KEYS.reached, NAMES_KEY, KEYS.top10)

    for _ in range(2):
        call_command("rebuild_leaderboard")
        assert board(api) == leaderboard_top_from_db()
        for player in players:
            total = Score.objects.get(user=player).total_score
            assert aio.run(user_rank(total=total)) == user_rank_from_db(total=total)
        assert client.zcard(KEYS.index) == len(players)


@pytest.mark.redis
def test_a_build_that_raced_a_change_is_not_cached(make_user, score):
    ada = make_user("ada")
    score(ada, 10)
    client = redis_client()
    scripts = scripts_for(client)
    *_, version = scripts.top_read(keys=[KEYS.index, KEYS.reached, KEYS.version, NAMES_KEY], args=[10, 1000])
    aio.run(leaderboard_record(records=[Record(ada.id, 99, timezone.now())]))
    stored = scripts.top_store(keys=[KEYS.top10, KEYS.version], args=[version, b"{}", 60])
    assert stored == 0 and client.get(KEYS.top10) is None


@pytest.mark.redis
def test_an_out_of_order_record_never_lowers_the_index(make_user):
    ada = make_user("ada")
    aio.run(leaderboard_record(records=[Record(ada.id, 50, timezone.now())]))
    aio.run(leaderboard_record(records=[Record(ada.id, 40, timezone.now())]))
    assert redis_client().zscore(KEYS.index, str(ada.id)) == 50


@pytest.mark.redis  # compares the Redis board with the database's
def test_without_redis_the_same_answers_come_from_the_database(api, make_user, score, settings):
    for number in range(12):
        score(make_user(), [5, 80, 80, 30][number % 4])
    with_redis = board(api)
    settings.REDIS_URL = ""
    assert board(api) == with_redis == leaderboard_top()


def test_an_unreachable_redis_falls_back_to_the_database(api, make_user, score, settings, client_for):
    ada = make_user("ada")
    score(ada, 20)
    expected = leaderboard_top_from_db()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    assert board(api) == expected
    response = client_for(ada).post(
        "/api/scores", data=json.dumps(new_action(points=5)), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["new_score"] == 25 and response.json()["rank"] == 1


def test_seed_demo_creates_players_whose_totals_equal_their_history(api, action_types):
    from django.db.models import Sum

    from scores.models import ScoreHistory

    call_command("seed_demo", users=12, actions=3)
    sums = dict(ScoreHistory.objects.values_list("user_id").annotate(total=Sum("points")))
    assert dict(Score.objects.values_list("user_id", "total_score")) == sums
    assert board(api)["total_players"] == 12
    call_command("seed_demo", users=12, actions=3, if_empty=True)
    assert Score.objects.count() == 12


def test_a_deleted_player_leaves_the_board(api, make_user, score):
    ada, bob = make_user("ada"), make_user("bob")
    score(ada, 50)
    score(bob, 20)
    ada.delete()
    body = board(api)
    assert standings(body) == [("bob", 20, 1)] and body["total_players"] == 1


@pytest.mark.redis
def test_records_of_one_script_call_get_the_ranks_and_invalidation_of_separate_calls(make_user):
    """Concurrent credits share one call of the record script: each record's rank is its
    competition rank on the board with every record applied, a player's second record sees
    the first, and the top 10 is invalidated only when a record reaches it."""
    players = [make_user() for _ in range(12)]
    client = redis_client()
    now = timezone.now()
    ranks = aio.run(
        leaderboard_record(records=[Record(player.id, 100 + 10 * n, now) for n, player in enumerate(players)])
    )
    assert ranks == list(range(12, 0, -1))  # 100 is twelfth, 210 first
    assert client.zscore(KEYS.index, str(players[2].id)) == 120  # the tenth score now
    version = client.get(KEYS.version)
    client.set(KEYS.top10, b"{}")

    # Below the tenth score, twice for one player, and a new player below it: no invalidation.
    newcomer = make_user()
    ranks = aio.run(
        leaderboard_record(
            records=[
                Record(players[0].id, 105, now),
                Record(players[0].id, 115, now),
                Record(newcomer.id, 1, now),
            ]
        )
    )
    assert ranks == [12, 11, 13]
    assert client.get(KEYS.version) == version and client.get(KEYS.top10) == b"{}"

    # One record reaching the tenth score, in a call with others that do not: invalidated.
    ranks = aio.run(
        leaderboard_record(records=[Record(newcomer.id, 2, now), Record(players[1].id, 120, now)])
    )
    assert ranks == [13, 10]  # 120 ties the tenth score
    assert client.get(KEYS.version) != version and client.get(KEYS.top10) is None
