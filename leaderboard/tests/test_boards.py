"""Boards (issue 13): operators, orders, windows, ties, pages, around-me, archive, rebuild,
bans, reverts and bad input, on whichever configuration the suite runs (embedded, or
PostgreSQL + Redis)."""

import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from antifraud.services import ban_create, ban_lift
from conftest import new_action
from leaderboard import board_selectors
from leaderboard.board_services import boards_archive_ended, boards_rebuild
from leaderboard.boards import boards_forget
from leaderboard.models import Board, BoardArchive, BoardStanding
from scoreboard_project.redis import redis_client
from scores.models import ScoreHistory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def boards(django_db_blocker):
    def define(**fields):
        with django_db_blocker.unblock():
            board = Board.objects.create(**{"title": fields["code"].title(), **fields})
        boards_forget()
        return board

    return define


@pytest.fixture
def credit(client_for, action_types):
    def post(user, points, action_type="quest"):
        response = client_for(user).post(
            "/api/scores", data=json.dumps(new_action(action_type, points)), content_type="application/json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    return post


@pytest.fixture
def ledger(django_db_blocker):
    """A credited action written straight into the ledger at a chosen moment (the credit
    path stamps the database's clock, which a test cannot move)."""

    def write(user, points, at, action_type="quest"):
        with django_db_blocker.unblock():
            ScoreHistory.objects.create(
                user=user,
                action_id=str(uuid.uuid4()),
                action_type=action_type,
                points=points,
                request_hash="test",
                created_at=at,
            )

    return write


def read(asgi, path, token=None):
    response = asgi("GET", path, headers={"authorization": f"Bearer {token}"} if token else {})
    assert response.status_code != 500, response.content
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def standings(body):
    return [(entry["username"], entry["score"], entry["rank"]) for entry in body["leaderboard"]]


def rebuild():
    """What an operator runs after writing the ledger by hand (nothing without Redis)."""
    call_command("rebuild_leaderboard")


def test_operators_orders_and_action_types(make_user, boards, credit, asgi):
    boards(code="total", window="weekly")
    boards(code="best", operator="best", action_types=["match_win"])
    boards(code="latest", operator="latest")
    boards(code="fewest", operator="sum", order="asc", action_types=["quest"])
    ada, bob = make_user("ada"), make_user("bob")
    credit(ada, 10)
    credit(ada, 20)
    credit(bob, 50, "match_win")
    credit(bob, 15, "match_win")
    credit(bob, 5)

    assert standings(read(asgi, "/api/boards/total")[1]) == [("bob", 70, 1), ("ada", 30, 2)]
    assert standings(read(asgi, "/api/boards/best")[1]) == [("bob", 50, 1)]
    assert standings(read(asgi, "/api/boards/latest")[1]) == [("ada", 20, 1), ("bob", 5, 2)]
    # Lower is better; only quests count.
    assert standings(read(asgi, "/api/boards/fewest")[1]) == [("bob", 5, 1), ("ada", 30, 2)]
    status, listed = read(asgi, "/api/boards")
    assert status == 200
    assert [board["code"] for board in listed["boards"]] == ["best", "fewest", "global", "latest", "total"]
    weekly = next(board for board in listed["boards"] if board["code"] == "total")
    assert weekly["period"]["key"].count("-W") == 1


def test_the_global_board_is_the_scoreboard(make_user, credit, asgi, api):
    for name, points in (("ada", 30), ("bob", 50), ("cy", 30)):
        credit(make_user(name), points)
    scoreboard = api.get("/api/scoreboard").json()
    status, board = read(asgi, "/api/boards/global")
    assert status == 200
    assert board["leaderboard"] == scoreboard["leaderboard"]
    assert board["total_players"] == scoreboard["total_players"] == 3
    assert board["period"] == {"key": "all", "starts_at": None, "ends_at": None}


def test_tie_policies(make_user, boards, credit, asgi):
    boards(code="shared", tie_policy="shared")
    boards(code="first", tie_policy="first_reached")
    ada, bob, cy, dan = (make_user(name) for name in ("ada", "bob", "cy", "dan"))
    credit(ada, 10)
    credit(bob, 10)
    credit(cy, 20)
    credit(dan, 5)
    assert standings(read(asgi, "/api/boards/shared")[1]) == [
        ("cy", 20, 1),
        ("ada", 10, 2),
        ("bob", 10, 2),
        ("dan", 5, 4),
    ]
    assert standings(read(asgi, "/api/boards/first")[1]) == [
        ("cy", 20, 1),
        ("ada", 10, 2),
        ("bob", 10, 3),
        ("dan", 5, 4),
    ]
    _, bob_shared = read(asgi, f"/api/boards/shared/players/{bob.id}")
    _, bob_first = read(asgi, f"/api/boards/first/players/{bob.id}")
    assert (bob_shared["player"]["rank"], bob_first["player"]["rank"]) == (2, 3)


def test_cursors_walk_the_whole_board_once_in_order(make_user, credit, asgi):
    players = [make_user(f"p{n:02d}") for n in range(23)]
    for n, player in enumerate(players):
        credit(player, 1 + n % 7)  # many ties
    seen, cursor, pages = [], None, 0
    while True:
        status, page = read(asgi, "/api/boards/global?limit=10" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        seen += page["leaderboard"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [entry["user_id"] for entry in seen] == [
        entry["user_id"] for entry in read(asgi, "/api/boards/global?limit=100")[1]["leaderboard"]
    ]
    assert len({entry["user_id"] for entry in seen}) == 23
    keys = [(-entry["score"], entry["last_updated"], entry["user_id"]) for entry in seen]
    assert keys == sorted(keys)


def test_a_cursor_still_works_after_its_entry_moved(make_user, credit, asgi):
    players = [make_user(f"q{n}") for n in range(6)]
    for n, player in enumerate(players):
        credit(player, 60 - n * 10)  # q0 60 ... q5 10
    _, first = read(asgi, "/api/boards/global?limit=3")
    assert [entry["username"] for entry in first["leaderboard"]] == ["q0", "q1", "q2"]
    credit(players[2], 100)  # the cursor's own entry jumps to the top
    _, second = read(asgi, f"/api/boards/global?limit=3&cursor={first['next_cursor']}")
    assert [entry["username"] for entry in second["leaderboard"]] == ["q3", "q4", "q5"]
    assert second["next_cursor"] is None


def test_around_me_and_one_player(make_user, credit, asgi, login):
    players = [make_user(f"r{n:02d}") for n in range(11)]
    for n, player in enumerate(players):
        credit(player, 100 - n * 9)  # r00 first ... r10 last
    middle = players[5]
    status, around = read(asgi, "/api/boards/global/around-me?radius=2", login(middle)["access"])
    assert status == 200, around
    assert [entry["username"] for entry in around["leaderboard"]] == ["r03", "r04", "r05", "r06", "r07"]
    assert around["player"] == {**around["leaderboard"][2], "rank": 6}
    _, top = read(asgi, "/api/boards/global/around-me?radius=2", login(players[0])["access"])
    assert [entry["rank"] for entry in top["leaderboard"]] == [1, 2, 3]
    newcomer = make_user("new")
    _, absent = read(asgi, "/api/boards/global/around-me", login(newcomer)["access"])
    assert absent["player"] is None and absent["leaderboard"] == []
    status, one = read(asgi, f"/api/boards/global/players/{players[10].id}")
    assert status == 200 and one["player"]["rank"] == 11 and one["total_players"] == 11
    status, missing = read(asgi, f"/api/boards/global/players/{newcomer.id}")
    assert status == 404 and missing["error_code"] == "NOT_FOUND"


def test_a_daily_board_resets_and_keeps_the_previous_day(make_user, boards, ledger, asgi, monkeypatch):
    monkeypatch.setattr(board_selectors, "ARCHIVE_GRACE", timedelta(0))
    boards(code="daily", window="daily", time_zone="America/New_York")
    ada, bob = make_user("ada"), make_user("bob")
    now = timezone.now()
    ledger(ada, 40, now - timedelta(days=1))
    ledger(bob, 10, now - timedelta(days=1))
    ledger(bob, 5, now)
    rebuild()
    assert standings(read(asgi, "/api/boards/daily")[1]) == [("bob", 5, 1)]
    status, previous = read(asgi, "/api/boards/daily?period=previous")
    assert status == 200, previous
    assert standings(previous) == [("ada", 40, 1), ("bob", 10, 2)]
    # The closed day is archived: its final standings no longer follow the ledger.
    assert BoardArchive.objects.filter(board__code="daily", period=previous["period"]["key"]).count() == 1
    assert BoardStanding.objects.filter(board__code="daily").count() == 2
    ledger(bob, 100, now - timedelta(days=1))
    assert read(asgi, "/api/boards/daily?period=previous")[1] == previous
    _, by_key = read(asgi, f"/api/boards/daily?period={previous['period']['key']}")
    assert by_key == previous


def test_ended_periods_are_archived_by_the_periodic_task(make_user, boards, ledger, monkeypatch):
    monkeypatch.setattr(board_selectors, "ARCHIVE_GRACE", timedelta(0))
    from leaderboard import board_services

    monkeypatch.setattr(board_services, "ARCHIVE_GRACE", timedelta(0))
    from leaderboard.periods import period_at, period_before

    monthly = boards(code="monthly", window="monthly")
    last_month = period_before(monthly, period_at(monthly, timezone.now()))
    ada = make_user("ada")
    ledger(ada, 7, last_month.starts_at + timedelta(hours=1))
    assert boards_archive_ended() == 1
    assert boards_archive_ended() == 0  # once
    archive = BoardArchive.objects.get(board__code="monthly")
    assert (archive.period, archive.players) == (last_month.key, 1)
    standing = BoardStanding.objects.get(board__code="monthly")
    assert (standing.user_id, standing.value, standing.rank) == (ada.id, 7, 1)


def test_an_event_board_counts_only_its_window(make_user, boards, credit, asgi, ledger):
    now = timezone.now()
    boards(code="live", window="event", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    boards(code="over", window="event", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    ada = make_user("ada")
    credit(ada, 10)
    assert standings(read(asgi, "/api/boards/live")[1]) == [("ada", 10, 1)]
    status, over = read(asgi, "/api/boards/over")
    assert status == 200 and over["leaderboard"] == [] and over["period"]["key"] == "event"


def test_bans_take_a_player_off_every_board_and_lifting_puts_them_back(make_user, boards, credit, asgi):
    boards(code="weekly", window="weekly")
    ada, bob = make_user("ada"), make_user("bob")
    credit(ada, 30)
    credit(bob, 20)
    ban = ban_create(user_id=ada.id, seconds=600, reason="test")
    for code in ("weekly", "global"):
        assert standings(read(asgi, f"/api/boards/{code}")[1]) == [("bob", 20, 1)], code
    ban_lift(ban=ban)
    for code in ("weekly", "global"):
        assert standings(read(asgi, f"/api/boards/{code}")[1]) == [("ada", 30, 1), ("bob", 20, 2)], code


def test_a_revert_corrects_every_board(make_user, boards, client_for, action_types, asgi):
    from scores.services import score_revert

    boards(code="weekly", window="weekly")
    ada = make_user("ada")
    actions = [new_action("quest", 30), new_action("quest", 5)]
    for action in actions:
        assert client_for(ada).post("/api/scores", data=action, format="json").status_code == 200
    score_revert(user_id=ada.id, action_ids=[actions[0]["action_id"]], reason="test")
    for code in ("weekly", "global"):
        assert standings(read(asgi, f"/api/boards/{code}")[1]) == [("ada", 5, 1)], code


def test_a_board_defined_later_is_filled_from_the_ledger(make_user, boards, credit, asgi):
    ada = make_user("ada")
    credit(ada, 10)
    credit(ada, 15, "match_win")
    boards(code="wins", action_types=["match_win"])
    rebuild()
    assert standings(read(asgi, "/api/boards/wins")[1]) == [("ada", 15, 1)]
    Board.objects.filter(code="wins").update(action_types=["quest", "match_win"])
    boards_forget()
    boards_rebuild(codes=["wins"])
    assert standings(read(asgi, "/api/boards/wins")[1]) == [("ada", 25, 1)]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/boards/nope", 404, "NOT_FOUND"),
        ("/api/boards/global?limit=0", 400, "INVALID_ACTION"),
        ("/api/boards/global?limit=101", 400, "INVALID_ACTION"),
        ("/api/boards/global?limit=ten", 400, "INVALID_ACTION"),
        ("/api/boards/global?limit=1&limit=2", 400, "INVALID_ACTION"),
        ("/api/boards/global?cursor=%%%", 400, "INVALID_ACTION"),
        ("/api/boards/global?cursor=bm90LWEtY3Vyc29y", 400, "INVALID_ACTION"),
        ("/api/boards/global?period=yesterday", 400, "INVALID_ACTION"),
        ("/api/boards/global?period=previous", 404, "NOT_FOUND"),
        ("/api/boards/daily?period=2026-02-30", 400, "INVALID_ACTION"),
        ("/api/boards/daily?period=2999-01-01", 404, "NOT_FOUND"),
        ("/api/boards/daily/around-me", 401, "UNAUTHORIZED"),
        ("/api/boards/daily/around-me?radius=51", 401, "UNAUTHORIZED"),
        ("/api/boards/daily/players/abc", 404, "NOT_FOUND"),
        ("/api/boards/daily/players/0", 404, "NOT_FOUND"),
        ("/api/boards/daily/elsewhere", 404, "NOT_FOUND"),
        ("/api/boards/off", 404, "NOT_FOUND"),
    ],
)
def test_bad_reads_get_the_json_errors_of_the_contract(boards, asgi, path, status, code):
    boards(code="daily", window="daily")
    boards(code="off", enabled=False)
    answered, body = read(asgi, path)
    assert (answered, body["error_code"]) == (status, code), body
    assert body["success"] is False and body["message"]


def test_bad_around_me_parameters_and_foreign_period_cursors(make_user, boards, credit, asgi, login):
    boards(code="daily", window="daily")
    ada = make_user("ada")
    credit(ada, 1)
    credit(make_user("bob"), 2)
    token = login(ada)["access"]
    assert read(asgi, "/api/boards/daily/around-me?radius=51", token)[0] == 400
    assert read(asgi, "/api/boards/daily/around-me?radius=-1", token)[0] == 400
    _, page = read(asgi, "/api/boards/daily?limit=1")
    status, body = read(asgi, f"/api/boards/daily?limit=1&period=2020-01-01&cursor={page['next_cursor']}")
    assert status == 400 and "another period" in body["message"]


def test_the_drf_twins_answer_like_the_hot_door(make_user, credit, api, asgi, client_for):
    ada = make_user("ada")
    credit(ada, 12)
    assert api.get("/api/boards/global?limit=5").json() == read(asgi, "/api/boards/global?limit=5")[1]
    assert api.get("/api/boards").json() == read(asgi, "/api/boards")[1]
    assert client_for(ada).get("/api/boards/global/around-me").json()["player"]["score"] == 12
    assert api.get("/api/boards/nope").json()["error_code"] == "NOT_FOUND"


# ---- staff ---------------------------------------------------------------------------


@pytest.fixture
def staff(make_user, client_for, django_db_blocker):
    user = make_user("mod")
    with django_db_blocker.unblock():
        user.is_staff = user.is_superuser = True
        user.save()
    return client_for(user)


def test_staff_define_and_change_boards(staff, make_user, client_for, api):
    created = staff.post(
        "/api/admin/boards",
        {"code": "wk", "title": "Week", "window": "weekly", "time_zone": "Europe/Paris"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["tie_policy"] == "shared"
    changed = staff.patch("/api/admin/boards/wk", {"title": "This week", "operator": "best"}, format="json")
    assert changed.status_code == 200 and changed.json()["operator"] == "best"
    assert [board["code"] for board in api.get("/api/boards").json()["boards"]] == ["global", "wk"]
    assert staff.get("/api/admin/boards/wk").json()["title"] == "This week"
    assert staff.post("/api/admin/boards/wk/rebuild").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"code": "ev", "title": "E", "window": "event"},
        {"code": "tz", "title": "T", "window": "daily", "time_zone": "Mars/Olympus"},
        {"code": "op", "title": "O", "operator": "median"},
        {"code": "Bad Code", "title": "B"},
        {"code": "at", "title": "A", "action_types": "quest"},
        {
            "code": "ev2",
            "title": "E",
            "window": "event",
            "starts_at": "2026-12-08T00:00:00Z",
            "ends_at": "2026-12-01T00:00:00Z",
        },
    ],
)
def test_staff_board_definitions_are_validated(staff, body):
    response = staff.post("/api/admin/boards", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_ACTION"


def test_the_global_board_keeps_its_definition(staff, django_db_blocker):
    with django_db_blocker.unblock():
        Board.objects.get_or_create(code="global", defaults={"title": "All time"})
    assert staff.patch("/api/admin/boards/global", {"window": "daily"}, format="json").status_code == 400
    assert (
        staff.patch("/api/admin/boards/global", {"title": "Hall of fame"}, format="json").status_code == 200
    )


def test_players_cannot_define_boards(make_user, client_for, api):
    assert (
        client_for(make_user())
        .post("/api/admin/boards", {"code": "x", "title": "X"}, format="json")
        .status_code
        == 403
    )
    assert api.get("/api/admin/boards").status_code == 401


# ---- Redis: one round trip, retries, reconcile -------------------------------------------


@pytest.mark.redis
def test_five_boards_cost_no_extra_round_trip(make_user, boards, credit, redis_log):
    ada = make_user("ada")
    credit(ada, 1)  # warm: scripts loaded, copies read
    log = redis_log()
    credit(ada, 1)
    without = log.count
    for code in ("a", "b", "c", "d", "e"):
        boards(code=code, window="daily" if code < "c" else "all_time")
    credit(ada, 1)  # the board copy is read again: not counted
    log = redis_log()
    credit(ada, 1)
    assert log.count == without
    client = redis_client()
    assert {member.decode()[17:] for member in client.zrange(f"board:a:{_today('a')}:idx", 0, -1)} == {
        f"{ada.id:010d}"
    }


def _today(code):
    from leaderboard.boards import boards_enabled
    from leaderboard.periods import period_at

    return period_at(boards_enabled()[code], timezone.now()).key


@pytest.mark.redis
def test_a_retried_record_call_adds_a_sum_once(make_user, boards):
    from leaderboard.services import Record, _record_in_redis
    from scoreboard_project import aio

    boards(code="sum", window="all_time")
    ada = make_user("ada")
    record = Record(ada.id, 10, timezone.now(), str(uuid.uuid4()), 200, 10, "quest")

    async def record_twice():
        for _ in range(2):  # the second call is a retry whose first answer was lost
            await _record_in_redis(aio.async_redis(), [record], None)

    aio.run(record_twice())
    assert redis_client().zrange("board:sum:all:idx", 0, -1, withscores=True)[0][1] == -10


@pytest.mark.redis
def test_reconcile_finds_and_fixes_a_board_that_drifted(make_user, boards, credit):
    boards(code="wk", window="weekly")
    ada = make_user("ada")
    credit(ada, 10)
    key = f"board:wk:{_today('wk')}:idx"
    client = redis_client()
    (member,) = client.zrange(key, 0, -1)
    client.zadd(key, {member: -999})
    with pytest.raises(CommandError, match="1 board entries differ"):
        call_command("reconcile_scores")
    call_command("reconcile_scores", "--fix")
    # Rebuilt from the ledger: the value is the history's (its reach time is the history
    # row's stamp, microseconds from the score row's).
    assert [score for _, score in client.zrange(key, 0, -1, withscores=True)] == [-10.0]
    call_command("reconcile_scores")


def test_a_tokyo_day_ends_at_tokyo_midnight_and_a_week_spans_new_year(make_user, boards, ledger, asgi):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    boards(code="tokyo", window="daily", time_zone="Asia/Tokyo")
    boards(code="week", window="weekly", time_zone="America/New_York")
    ada, bob = make_user("ada"), make_user("bob")
    ledger(ada, 10, datetime(2026, 11, 2, 23, 59, tzinfo=tokyo))  # 14:59 UTC on 2 November
    ledger(bob, 20, datetime(2026, 11, 3, 0, 1, tzinfo=tokyo))  # 15:01 UTC on 2 November
    new_york = ZoneInfo("America/New_York")
    ledger(ada, 5, datetime(2025, 12, 28, 23, 0, tzinfo=new_york))  # Sunday: 2025-W52
    ledger(ada, 7, datetime(2025, 12, 31, 23, 0, tzinfo=new_york))  # Wednesday: 2026-W01
    ledger(bob, 9, datetime(2026, 1, 1, 1, 0, tzinfo=new_york))  # Thursday: 2026-W01
    rebuild()
    assert standings(read(asgi, "/api/boards/tokyo?period=2026-11-02")[1]) == [("ada", 10, 1)]
    assert standings(read(asgi, "/api/boards/tokyo?period=2026-11-03")[1]) == [("bob", 20, 1)]
    assert standings(read(asgi, "/api/boards/week?period=2025-W52")[1]) == [("ada", 5, 1)]
    week = read(asgi, "/api/boards/week?period=2026-W01")[1]
    assert standings(week) == [("bob", 9, 1), ("ada", 7, 2)]
    assert week["period"]["starts_at"] == "2025-12-29T05:00:00.000000Z"


def test_metrics_name_board_routes_by_template(make_user, credit, asgi):
    ada = make_user("ada")
    credit(ada, 3)
    for path in (
        f"/api/boards/global/players/{ada.id}",
        "/api/boards/x1",
        "/api/boards/x2",
        "/api/boards/a/b/c/d",
    ):
        read(asgi, path)
    scraped = asgi("GET", "/metrics").content.decode()
    assert 'route="/api/boards/{code}/players/{player}"' in scraped
    assert 'route="/api/boards/{code}"' in scraped
    assert "x1" not in scraped and "/api/boards/a/b" not in scraped


@pytest.mark.parametrize(
    "body",
    [
        {"title": "Week", "enabled": 0},
        {"title": 7},
        {"starts_at": "2026-12-04T15:00:00Z", "ends_at": "2026-12-04T14:00:00Z"},
        {"action_types": [1]},
    ],
)
def test_staff_changes_are_typed_strictly_and_never_a_500(staff, django_db_blocker, body):
    created = staff.post("/api/admin/boards", {"code": "wk", "title": "W", "window": "weekly"}, format="json")
    assert created.status_code == 201
    response = staff.patch("/api/admin/boards/wk", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_ACTION"
    assert staff.post("/api/admin/boards", {"code": 0, "title": "Zero"}, format="json").status_code == 400


@pytest.mark.redis
def test_a_rebuild_under_credits_leaves_one_entry_a_player(make_user, boards, credit):
    """Credits land while the board is rebuilt from the ledger: afterwards every player has
    one entry, equal to the ledger's (reconcile finds no difference)."""
    import threading

    from leaderboard.board_services import boards_check

    boards(code="wk", window="weekly")
    players = [make_user(f"z{n}") for n in range(8)]
    for player in players:
        credit(player, 5)
    stop = threading.Event()

    def rebuild_again():
        from django.db import connection

        try:
            while not stop.is_set():
                boards_rebuild(codes=["wk"])
        finally:
            connection.close()

    worker = threading.Thread(target=rebuild_again)
    worker.start()
    try:
        for round_ in range(3):
            for player in players:
                credit(player, 1 + round_)
    finally:
        stop.set()
        worker.join()
    assert boards_check() == []
