"""/ws/scoreboard with Channels' WebsocketCommunicator, against the production ASGI app.

Test bodies run on the process's background loop (`aio.run`), where the score service and
the live-socket hub of the sync doors live too.
"""

import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator

from accounts.services import session_revoke
from accounts.tickets import ws_ticket_issue
from scoreboard_project import aio
from scores.services import score_submit
from scores.validation import ScoreAction

pytestmark = pytest.mark.django_db(transaction=True)


def app():
    from scoreboard_project.asgi import application

    return application


def socket(
    *, token: str | None = None, ticket: str | None = None, origin: str | None = None
) -> WebsocketCommunicator:
    headers = []
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    path = "/ws/scoreboard" + (f"?ticket={ticket}" if ticket else "")
    return WebsocketCommunicator(app(), path, headers=headers)


async def opened(communicator: WebsocketCommunicator) -> dict:
    """Connect and return the snapshot that must come first."""
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "LEADERBOARD_UPDATE"
    return snapshot


async def refused_with(communicator: WebsocketCommunicator) -> int:
    connected, _ = await communicator.connect(timeout=5)
    assert connected, "a refused connection is accepted, then closed with a code"
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    await communicator.disconnect()
    return message["code"]


async def credit(user_id: int, points: int, action_type: str = "quest"):
    action = ScoreAction(action_id=str(uuid.uuid4()), action_type=action_type, points=points)
    return await score_submit(user_id=user_id, action=action)


async def next_of(communicator, kind: str, timeout: float = 5) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


@pytest.fixture
def players(make_user, login, action_types):
    users = [make_user(f"p{number}") for number in range(3)]
    return [(user, login(user)["access"]) for user in users]


def test_a_bearer_token_connects_and_gets_the_board_first(players):
    (ada, token), *_ = players

    async def body():
        await credit(ada.id, 40)
        communicator = socket(token=token)
        snapshot = await opened(communicator)
        entries = snapshot["data"]["leaderboard"]
        assert [(entry["username"], entry["score"], entry["rank"]) for entry in entries] == [("p0", 40, 1)]
        assert snapshot["data"]["changed_ranks"] == [1]
        assert isinstance(snapshot["seq"], int) and snapshot["data"]["timestamp"].endswith("Z")
        await communicator.disconnect()

    aio.run(body())


def test_a_player_ticket_connects_once(players):
    (ada, token), *_ = players
    ticket = ws_ticket_issue(user_id=ada.id, sid=_sid(token))

    async def body():
        first = socket(ticket=ticket)
        await opened(first)
        assert await refused_with(socket(ticket=ticket)) == 4401  # single use
        await first.disconnect()

    aio.run(body())


def test_unknown_ticket_missing_credentials_and_bad_tokens_are_4401(players, settings):
    async def body():
        assert await refused_with(socket(ticket="no-such-ticket")) == 4401
        assert await refused_with(socket()) == 4401
        assert await refused_with(socket(token="not.a.jwt")) == 4401

    aio.run(body())


def test_anonymous_sockets_only_where_the_operator_allows_them(players, settings):
    settings.WS_ALLOW_ANONYMOUS = True

    async def body():
        communicator = socket()
        await opened(communicator)
        await communicator.disconnect()

    aio.run(body())


def test_a_read_only_ticket_sees_the_board_but_no_score_updates(players):
    (ada, _), *_ = players
    ticket = ws_ticket_issue(user_id=None, sid=None)

    async def body():
        communicator = socket(ticket=ticket)
        await opened(communicator)
        await credit(ada.id, 10)
        update = await communicator.receive_json_from(timeout=5)
        assert update["type"] == "LEADERBOARD_UPDATE"
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()

    aio.run(body())


def test_a_foreign_browser_origin_is_4403_and_servers_without_origin_pass(players):
    (_, token), *_ = players

    async def body():
        assert await refused_with(socket(token=token, origin="https://evil.example")) == 4403
        allowed = socket(token=token, origin="http://127.0.0.1:8000")
        await opened(allowed)
        await allowed.disconnect()

    aio.run(body())


def test_connection_limits_per_process_and_per_player_are_4429(players, settings):
    (_, ada_token), (_, bob_token), _ = players
    settings.WS_MAX_CONNECTIONS_PER_USER = 1

    async def body():
        first = socket(token=ada_token)
        await opened(first)
        assert await refused_with(socket(token=ada_token)) == 4429
        settings.WS_CONNECTION_LIMIT = 1
        assert await refused_with(socket(token=bob_token)) == 4429
        await first.disconnect()

    aio.run(body())


def test_a_top_ten_change_is_broadcast_with_its_changed_ranks(players):
    (ada, token), (bob, _), _ = players

    async def body():
        await credit(ada.id, 50)
        communicator = socket(token=token)
        snapshot = await opened(communicator)
        await credit(bob.id, 60)
        update = await next_of(communicator, "LEADERBOARD_UPDATE")
        assert [entry["username"] for entry in update["data"]["leaderboard"]] == ["p1", "p0"]
        assert update["data"]["changed_ranks"] == [1, 2]
        assert update["seq"] > snapshot["seq"]
        await communicator.disconnect()

    aio.run(body())


def test_a_change_outside_the_top_ten_is_not_broadcast(make_user, login, action_types):
    leaders = [make_user(f"lead{number}") for number in range(10)]
    outsider = make_user("outsider")
    token = login(leaders[0])["access"]

    async def body():
        for number, leader in enumerate(leaders):
            await credit(leader.id, 80 + number)
        await credit(outsider.id, 1)
        communicator = socket(token=token)
        await opened(communicator)
        await credit(outsider.id, 2)
        assert await communicator.receive_nothing(timeout=0.6)
        await communicator.disconnect()

    aio.run(body())


def test_score_updates_reach_only_the_players_own_sockets(players):
    (ada, ada_token), (bob, bob_token), _ = players

    async def body():
        ada_socket, bob_socket = socket(token=ada_token), socket(token=bob_token)
        await opened(ada_socket)
        await opened(bob_socket)
        await credit(ada.id, 25)
        update = await next_of(ada_socket, "SCORE_UPDATE")
        assert update == {
            "type": "SCORE_UPDATE",
            "seq": 1,
            "data": {"new_score": 25, "rank": 1, "points_gained": 25},
        }
        await credit(ada.id, 5)
        assert (await next_of(ada_socket, "SCORE_UPDATE"))["seq"] == 2
        seen = []
        while not await bob_socket.receive_nothing(timeout=0.5):
            seen.append((await bob_socket.receive_json_from())["type"])
        assert "SCORE_UPDATE" not in seen
        await ada_socket.disconnect()
        await bob_socket.disconnect()

    aio.run(body())


def test_a_burst_of_a_hundred_updates_is_coalesced_and_ends_on_the_final_board(
    make_user, login, action_types, settings
):
    settings.WS_BROADCAST_INTERVAL = 0.1
    racers = [make_user(f"r{number}") for number in range(10)]
    token = login(racers[0])["access"]

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        for number in range(100):
            await credit(racers[number % 10].id, 1 + (number * 7) % 100)
        updates = []
        while not await communicator.receive_nothing(timeout=1.0):
            message = await communicator.receive_json_from()
            if message["type"] == "LEADERBOARD_UPDATE":
                updates.append(message)
        from leaderboard.selectors import leaderboard_top_json

        final = json.loads(await leaderboard_top_json())["leaderboard"]
        assert 1 <= len(updates) <= 30, len(updates)
        assert updates[-1]["data"]["leaderboard"] == final
        assert [update["seq"] for update in updates] == sorted({update["seq"] for update in updates})
        await communicator.disconnect()

    aio.run(body())


def test_ping_gets_pong_and_anything_else_an_error(players):
    (_, token), *_ = players

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        await communicator.send_json_to({"type": "PING"})
        assert await communicator.receive_json_from(timeout=5) == {"type": "PONG"}
        await communicator.send_to(text_data="hello")
        error = await communicator.receive_json_from(timeout=5)
        assert error["type"] == "ERROR" and error["data"]["error_code"] == "INVALID_MESSAGE"
        await communicator.send_json_to({"type": "SUBSCRIBE"})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "ERROR"
        await communicator.disconnect()

    aio.run(body())


def test_a_frame_over_4_kib_closes_the_socket_with_1009(players):
    (_, token), *_ = players

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        await communicator.send_to(text_data=json.dumps({"type": "PING", "pad": "x" * 4100}))
        message = await communicator.receive_output(timeout=5)
        assert (
            message == {"type": "websocket.close", "code": 1009, "reason": ""} or message.get("code") == 1009
        )

    aio.run(body())


def test_logout_closes_that_sessions_sockets_only(players, login):
    (ada, token), *_ = players
    other_session = login(ada)["access"]

    async def body():
        doomed, surviving = socket(token=token), socket(token=other_session)
        await opened(doomed)
        await opened(surviving)
        await aio.db_call(session_revoke)(sid=_sid(token))
        closed = await doomed.receive_output(timeout=5)
        assert closed["type"] == "websocket.close" and closed["code"] == 4401
        assert await surviving.receive_nothing(timeout=0.5)
        await surviving.disconnect()
        await doomed.disconnect()

    aio.run(body())


def test_the_server_pings_and_drops_a_silent_peer(players, settings):
    (_, token), *_ = players
    settings.WS_HEARTBEAT_INTERVAL = 1

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        assert (await next_of(communicator, "PING", timeout=3)) == {"type": "PING"}
        while True:  # stay silent until dropped
            message = await communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                assert message["code"] == 4408
                break
        await communicator.disconnect()

    aio.run(body())


class SilentSocket:
    """What the heartbeat round reads and does to a socket."""

    def __init__(self, heard_at: float, pinged_at: float) -> None:
        self.last_heard, self.last_pinged, self.user_id = heard_at, pinged_at, None
        self.sent: list[str] = []
        self.closed: int | None = None

    def send_text(self, text: str) -> None:
        self.sent.append(text)

    def end(self, code: int) -> None:
        self.closed = code


def test_a_late_heartbeat_round_pings_a_never_pinged_socket_before_dropping_it():
    """A round that runs late (a busy loop) finds a socket silent for two intervals that was
    never pinged: it gets its PING first, and is dropped only if that goes unanswered."""
    from leaderboard.hub import PING, Hub

    hub = Hub.__new__(Hub)  # the round only reads and writes the sockets
    never_pinged = SilentSocket(heard_at=0.0, pinged_at=0.0)
    pinged_unanswered = SilentSocket(heard_at=0.0, pinged_at=1.0)
    hub.sockets = {never_pinged, pinged_unanswered}
    hub.heartbeat_round(now=2.5, interval=1)
    assert (never_pinged.sent, never_pinged.closed) == ([PING], None)
    assert (pinged_unanswered.sent, pinged_unanswered.closed) == ([], 4408)
    hub.heartbeat_round(now=3.6, interval=1)
    assert never_pinged.closed == 4408


def _sid(token: str) -> str:
    from accounts.tokens import access_token_verify

    return access_token_verify(token).sid


def test_a_ticket_of_an_ended_session_is_refused(players):
    (ada, token), *_ = players
    ticket = ws_ticket_issue(user_id=ada.id, sid=_sid(token))
    session_revoke(sid=_sid(token))

    async def body():
        assert await refused_with(socket(ticket=ticket)) == 4401

    aio.run(body())


@pytest.mark.redis
def test_the_heartbeat_closes_a_socket_whose_session_ended_unannounced(players, settings):
    from accounts.sessions import session_cache_key
    from scoreboard_project.redis import redis_client

    (_, token), *_ = players
    settings.WS_HEARTBEAT_INTERVAL = 1

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        redis_client().set(session_cache_key(_sid(token)), "-")  # revoked, and nobody told the hub
        while True:
            message = await communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                assert message["code"] == 4401
                break
        await communicator.disconnect()

    aio.run(body())


def test_seq_counts_the_messages_of_each_connection(players):
    (ada, token), (bob, _), _ = players

    async def body():
        communicator = socket(token=token)
        assert (await opened(communicator))["seq"] == 1
        await credit(bob.id, 70)
        assert (await next_of(communicator, "LEADERBOARD_UPDATE"))["seq"] == 2
        await credit(ada.id, 90)
        assert (await next_of(communicator, "SCORE_UPDATE"))["seq"] == 1
        assert (await next_of(communicator, "LEADERBOARD_UPDATE"))["seq"] == 3
        await communicator.disconnect()

    aio.run(body())


# ---- SUBSCRIBE: one other board per socket (issue 13) -------------------------------------


@pytest.fixture
def boards(django_db_blocker):
    """Define boards as an operator would; this process forgets its copy of the list."""
    from leaderboard.boards import boards_forget
    from leaderboard.models import Board

    def define(code: str, **fields) -> None:
        with django_db_blocker.unblock():
            Board.objects.create(code=code, title=fields.pop("title", code.title()), **fields)
        boards_forget()

    yield define
    boards_forget()


async def subscribed(communicator, code: str) -> dict:
    """Send SUBSCRIBE and return its answer (the board's snapshot, or an ERROR)."""
    await communicator.send_json_to({"type": "SUBSCRIBE", "board": code})
    while True:
        message = await communicator.receive_json_from(timeout=5)
        if message["type"] == "ERROR" or message["data"].get("board") == code:
            return message


async def next_on(communicator, board: str | None, timeout: float = 5) -> dict:
    """The next LEADERBOARD_UPDATE of `board` (None: of the global board, which names none)."""
    while True:
        message = await next_of(communicator, "LEADERBOARD_UPDATE", timeout=timeout)
        if message["data"].get("board") == board:
            return message


async def updates_of(communicator, *boards: str | None) -> dict:
    """The next LEADERBOARD_UPDATE of each board named (None: the global one), in any order."""
    found: dict = {}
    while len(found) < len(boards):
        message = await next_of(communicator, "LEADERBOARD_UPDATE")
        if (board := message["data"].get("board")) in boards:
            found.setdefault(board, message)
    return found


async def boards_until_quiet(communicator, quiet: float = 0.5) -> set[str | None]:
    """The boards of the LEADERBOARD_UPDATEs that arrive until the socket stays quiet."""
    seen = set()
    while not await communicator.receive_nothing(timeout=quiet):
        message = await communicator.receive_json_from()
        if message["type"] == "LEADERBOARD_UPDATE":
            seen.add(message["data"].get("board"))
    return seen


def names_and_scores(message: dict) -> list[tuple[str, int]]:
    return [(entry["username"], entry["score"]) for entry in message["data"]["leaderboard"]]


def test_subscribe_answers_with_the_boards_top_ten_named_by_its_code(players, boards):
    (ada, token), (bob, _), _ = players
    boards("wins", window="weekly", action_types=["match_win"])

    async def body():
        await credit(ada.id, 30, "match_win")
        await credit(bob.id, 50, "match_win")
        await credit(bob.id, 90)  # a quest: the global board only
        communicator = socket(token=token)
        opening = await opened(communicator)
        assert "board" not in opening["data"]
        snapshot = await subscribed(communicator, "wins")
        assert snapshot["type"] == "LEADERBOARD_UPDATE"
        assert names_and_scores(snapshot) == [("p1", 50), ("p0", 30)]
        assert [entry["rank"] for entry in snapshot["data"]["leaderboard"]] == [1, 2]
        assert snapshot["data"]["changed_ranks"] == [1, 2]
        assert snapshot["data"]["timestamp"].endswith("Z")
        assert snapshot["seq"] == opening["seq"] + 1  # one counter for every LEADERBOARD_UPDATE
        await communicator.disconnect()

    aio.run(body())


def test_a_credit_on_the_subscribed_board_pushes_its_update_and_the_global_one_still_comes(players, boards):
    (ada, token), (bob, _), _ = players
    boards("wins", window="weekly", action_types=["match_win"])

    async def body():
        await credit(ada.id, 30, "match_win")
        communicator = socket(token=token)
        await opened(communicator)
        before = await subscribed(communicator, "wins")
        await credit(bob.id, 40, "match_win")
        updates = await updates_of(communicator, "wins", None)  # None: the global one, as ever
        update, overall = updates["wins"], updates[None]
        assert names_and_scores(update) == [("p1", 40), ("p0", 30)]
        assert update["data"]["changed_ranks"] == [1, 2]
        assert update["seq"] > before["seq"] and update["seq"] != overall["seq"]
        assert names_and_scores(overall) == [("p1", 40), ("p0", 30)]
        assert "board" not in overall["data"]
        # A quest counts on the global board only: nothing more for "wins".
        await credit(ada.id, 5)
        assert names_and_scores(await next_on(communicator, None)) == [("p1", 40), ("p0", 35)]
        assert "wins" not in await boards_until_quiet(communicator)
        await communicator.disconnect()

    aio.run(body())


def test_each_board_goes_only_to_its_followers_and_a_new_subscribe_replaces_the_old(players, boards):
    (ada, ada_token), (bob, bob_token), _ = players
    boards("wins", window="weekly", action_types=["match_win"])
    boards("quests", window="daily", action_types=["quest"])

    async def body():
        ada_socket, bob_socket = socket(token=ada_token), socket(token=bob_token)
        await opened(ada_socket)
        await opened(bob_socket)
        await subscribed(ada_socket, "wins")
        await subscribed(bob_socket, "quests")
        await credit(ada.id, 20, "match_win")
        assert names_and_scores(await next_on(ada_socket, "wins")) == [("p0", 20)]
        await credit(bob.id, 7)
        assert names_and_scores((await updates_of(bob_socket, "quests", None))["quests"]) == [("p1", 7)]
        assert "wins" not in await boards_until_quiet(bob_socket, 0.3)
        # When ada subscribes to "quests", then "wins" no longer reaches her socket.
        assert names_and_scores(await subscribed(ada_socket, "quests")) == [("p1", 7)]
        await credit(bob.id, 60, "match_win")
        await next_on(ada_socket, None)
        await credit(ada.id, 9)
        assert names_and_scores(await next_on(ada_socket, "quests")) == [("p0", 9), ("p1", 7)]
        assert "wins" not in await boards_until_quiet(ada_socket, 0.3)
        await ada_socket.disconnect()
        await bob_socket.disconnect()

    aio.run(body())


def test_an_unknown_or_disabled_board_is_not_found_and_changes_nothing(players, boards):
    (ada, token), *_ = players
    boards("wins", window="weekly", action_types=["match_win"])
    boards("retired", enabled=False)

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        await subscribed(communicator, "wins")
        for code in ("no-such-board", "retired"):
            error = await subscribed(communicator, code)
            assert error["type"] == "ERROR", error
            assert error["data"]["error_code"] == "NOT_FOUND" and error["data"]["message"]
        # The subscription to "wins" stands.
        await credit(ada.id, 15, "match_win")
        assert names_and_scores(await next_on(communicator, "wins")) == [("p0", 15)]
        await communicator.send_json_to({"type": "SUBSCRIBE", "board": 7})
        assert (await next_of(communicator, "ERROR"))["data"]["error_code"] == "INVALID_MESSAGE"
        await communicator.disconnect()

    aio.run(body())


def test_subscribing_to_global_returns_to_the_default_board(players, boards):
    (ada, token), (bob, _), _ = players
    boards("wins", window="weekly", action_types=["match_win"])

    async def body():
        await credit(bob.id, 12)
        communicator = socket(token=token)
        await opened(communicator)
        await subscribed(communicator, "wins")
        back = await subscribed(communicator, "global")
        assert back["type"] == "LEADERBOARD_UPDATE"
        assert names_and_scores(back) == [("p1", 12)]
        assert back["data"]["changed_ranks"] == [1]
        await credit(ada.id, 25, "match_win")
        overall = await next_on(communicator, None)
        assert names_and_scores(overall) == [("p0", 25), ("p1", 12)]
        assert await boards_until_quiet(communicator) <= {None}
        await communicator.disconnect()

    aio.run(body())


def test_a_burst_on_a_subscribed_board_is_coalesced_and_ends_on_its_final_top_ten(
    make_user, login, action_types, boards, settings
):
    from leaderboard.board_reads import board_read

    settings.WS_BROADCAST_INTERVAL = 0.1
    boards("wins", window="monthly", action_types=["match_win"])
    racers = [make_user(f"r{number}") for number in range(12)]
    token = login(racers[0])["access"]

    async def body():
        communicator = socket(token=token)
        await opened(communicator)
        await subscribed(communicator, "wins")
        for number in range(60):
            await credit(racers[number % 12].id, 10 + (number * 7) % 100, "match_win")
        updates = []
        while not await communicator.receive_nothing(timeout=1.0):
            message = await communicator.receive_json_from()
            if message["type"] == "LEADERBOARD_UPDATE" and message["data"].get("board") == "wins":
                updates.append(message)
        final = (await board_read("wins", {}))["leaderboard"]
        assert 1 <= len(updates) <= 30, len(updates)
        assert updates[-1]["data"]["leaderboard"] == final
        assert len(final) == 10
        await communicator.disconnect()

    aio.run(body())


@pytest.mark.redis
def test_a_boards_change_announced_by_another_process_reaches_the_followers(players, boards):
    """Another process's news comes only through Redis: a top 10 written and announced on the
    boards channel, as the record script of a credit elsewhere does it."""
    from django.utils import timezone

    from leaderboard.boards import (
        boards_channel,
        boards_enabled,
        member,
        period_index,
        player_entry_text,
        player_key,
    )
    from leaderboard.periods import period_at
    from scoreboard_project.redis import redis_client

    (ada, token), (bob, _), _ = players
    boards("wins", window="weekly", action_types=["match_win"])

    async def body():
        await credit(ada.id, 30, "match_win")
        communicator = socket(token=token)
        await opened(communicator)
        await subscribed(communicator, "wins")
        board = boards_enabled()["wins"]
        index = period_index("wins", period_at(board, timezone.now()).key)
        bob_member = member(int(timezone.now().timestamp() * 1_000_000), bob.id)
        client = redis_client()
        client.zadd(index, {bob_member: board.sign * 45})
        period = period_at(board, timezone.now()).key
        client.hset(player_key(bob.id), "wins", player_entry_text(period, bob_member, board.sign * 45))
        client.publish(boards_channel(), "global wins")
        update = await next_on(communicator, "wins")
        assert names_and_scores(update) == [("p1", 45), ("p0", 30)]
        await communicator.disconnect()

    aio.run(body())
