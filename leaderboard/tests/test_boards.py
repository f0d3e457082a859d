"""Boards (issue 13): definitions, windows, reads, pages, around-me, ties, archive, rebuild."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import new_action
from leaderboard.boards import boards_forget
from leaderboard.models import Board

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def boards(django_db_blocker):
    def define(**fields):
        defaults = {"title": fields.get("code", "b").title()}
        with django_db_blocker.unblock():
            board = Board.objects.create(**{**defaults, **fields})
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


def read(asgi, path, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = asgi("GET", path, headers=headers)
    return response.status_code, response.json()


def test_smoke(make_user, boards, credit, asgi, login):
    boards(code="weekly", window="weekly")
    boards(code="best", operator="best", action_types=["match_win"])
    ada, bob = make_user("ada"), make_user("bob")
    credit(ada, 10)
    credit(ada, 20)
    credit(bob, 50, "match_win")
    credit(bob, 15, "match_win")
    status, body = read(asgi, "/api/boards")
    assert status == 200, body
    assert [board["code"] for board in body["boards"]] == ["best", "global", "weekly"]
    status, body = read(asgi, "/api/boards/weekly")
    assert status == 200, body
    assert [(e["username"], e["score"], e["rank"]) for e in body["leaderboard"]] == [("bob", 65, 1), ("ada", 30, 2)]
    status, body = read(asgi, "/api/boards/best")
    assert [(e["username"], e["score"]) for e in body["leaderboard"]] == [("bob", 50)]
    status, body = read(asgi, "/api/boards/global?limit=1")
    assert status == 200, body
    assert body["next_cursor"], body
    status, page2 = read(asgi, f"/api/boards/global?limit=1&cursor={body['next_cursor']}")
    assert [e["username"] for e in page2["leaderboard"]] == ["ada"], page2
    status, around = read(asgi, "/api/boards/weekly/around-me", login(ada)["access"])
    assert status == 200, around
    assert around["player"]["username"] == "ada"
    status, player = read(asgi, f"/api/boards/weekly/players/{bob.id}")
    assert player["player"]["score"] == 65
