"""Each per-request rule in each mode (off, shadow, enforce), with its stored decision.

These run through the production ASGI door on both configurations: with Redis the rules
live in the admission script, without it in the process's own limits.
"""

import json

import pytest

from antifraud.models import Ban, BlockedAddress, Decision, Flag, HeldAction, Review
from antifraud.services import flag_confirm, flag_dismiss, held_reject, review_close, rule_mode_set
from conftest import new_action
from scores.models import Score, ScoreHistory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def player(make_user, login, action_types):
    user = make_user()
    user.token = login(user)["access"]
    return user


@pytest.fixture
def mode(django_db_blocker):
    def switch(code: str, value: str, threshold: float | None = None):
        with django_db_blocker.unblock():
            rule_mode_set(code=code, mode=value, threshold=threshold)

    return switch


def post(asgi, user, action=None, **headers):
    action = action or new_action()
    sent = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json", **headers}
    return asgi("POST", "/api/scores", json.dumps(action).encode(), sent)


def board(asgi) -> dict:
    return asgi("GET", "/api/scoreboard").json()


# --- ip_blocklist ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule_mode", ["off", "shadow", "enforce"])
def test_a_blocked_address(asgi, player, mode, rule_mode, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    BlockedAddress.objects.create(network="203.0.113.0/24", reason="botnet")
    mode("ip_blocklist", rule_mode)
    blocked = post(asgi, player, **{"X-Forwarded-For": "203.0.113.77"})
    other = post(asgi, player, **{"X-Forwarded-For": "198.51.100.1"})
    assert other.status_code == 200
    decisions = list(Decision.objects.filter(rule="ip_blocklist"))
    if rule_mode == "enforce":
        assert blocked.status_code == 403 and blocked.json()["error_code"] == "FORBIDDEN"
        assert ScoreHistory.objects.filter(user=player).count() == 1
    else:
        assert blocked.status_code == 200
        assert ScoreHistory.objects.filter(user=player).count() == 2
    if rule_mode == "off":
        assert decisions == []
    else:
        (decision,) = decisions
        assert (decision.mode, decision.outcome, decision.user_id, decision.client_ip) == (
            rule_mode,
            "refused",
            player.id,
            "203.0.113.77",
        )
        assert decision.evidence == {
            "address": "203.0.113.77",
            "blocked_network": "203.0.113.0/24",
            "reason": "botnet",
        }


def test_an_expired_block_no_longer_applies(asgi, player):
    from datetime import timedelta

    from django.utils import timezone

    BlockedAddress.objects.create(
        network="127.0.0.1", reason="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert post(asgi, player).status_code == 200


# --- penalties ------------------------------------------------------------------------------


@pytest.fixture
def ladder(settings):
    settings.RATE_LIMIT_PER_USER = 1
    settings.RATE_LIMIT_WINDOW = 30
    settings.PENALTY_VIOLATIONS = 2
    settings.PENALTY_STEPS = [60]


@pytest.mark.ratelimits
@pytest.mark.parametrize("rule_mode", ["off", "shadow", "enforce"])
def test_penalties_in_each_mode(asgi, player, ladder, mode, rule_mode):
    mode("penalties", rule_mode)
    assert post(asgi, player).status_code == 200
    answers = [post(asgi, player).status_code for _ in range(3)]
    decisions = list(Decision.objects.filter(rule="penalties"))
    if rule_mode == "enforce":
        assert answers == [429, 403, 403]
        assert Ban.objects.filter(user=player).count() == 1
        (decision,) = decisions
        assert (decision.mode, decision.outcome, decision.evidence["level"]) == ("enforce", "banned", 1)
    else:
        assert answers == [429, 429, 429]
        assert not Ban.objects.exists()
    if rule_mode == "shadow":
        (decision,) = decisions  # the second violation would have banned; the third starts anew
        assert (decision.mode, decision.outcome, decision.evidence["would_ban_level"]) == (
            "shadow",
            "banned",
            1,
        )
    if rule_mode == "off":
        assert decisions == []


# --- velocity -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_mode", ["off", "shadow", "enforce"])
def test_velocity_in_each_mode(asgi, player, mode, rule_mode, settings):
    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 100
    mode("velocity", rule_mode)
    first, second = new_action(points=60), new_action(points=50)
    assert post(asgi, player, first).status_code == 200
    assert not Flag.objects.exists()  # 60 is under the threshold
    assert post(asgi, player, second).status_code == 200  # 110 points in a minute: flagged
    assert post(asgi, player, second).status_code == 200  # a replay adds nothing
    assert Score.objects.get(user=player).total_score == 110  # a flag does not refuse
    flags = list(Flag.objects.filter(rule="velocity"))
    if rule_mode == "off":
        assert flags == [] and not Decision.objects.exists()
        return
    (flag,) = flags
    assert flag.status == ("open" if rule_mode == "enforce" else "shadow")
    assert (flag.user_id, flag.threshold, flag.observed) == (player.id, 100, 110)
    assert sorted(flag.evidence["action_ids"]) == sorted([first["action_id"], second["action_id"]])
    (decision,) = Decision.objects.filter(rule="velocity")
    assert (decision.outcome, decision.mode, decision.action_id, decision.observed, decision.flag_id) == (
        "flagged",
        rule_mode,
        second["action_id"],
        110,
        flag.id,
    )


def test_one_velocity_flag_per_hour_gathers_the_decisions(asgi, player, settings, mode):
    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 100
    mode("velocity", "enforce")
    for _ in range(4):
        assert post(asgi, player, new_action(points=60)).status_code == 200
    (flag,) = Flag.objects.filter(rule="velocity")
    # Only the action that crossed the threshold is judged: 120 (not 180, 240).
    assert Decision.objects.filter(rule="velocity", flag=flag).count() == 1


def test_a_dismissed_velocity_flag_starts_the_count_over(asgi, player, mode, settings):
    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 100
    mode("velocity", "enforce")
    for points in (60, 50):
        assert post(asgi, player, new_action(points=points)).status_code == 200
    assert flag_dismiss(flag=Flag.objects.get(rule="velocity"))
    # Counted from zero again: 60 stays under the threshold, 60 more crosses it at 120.
    for points in (60, 60):
        assert post(asgi, player, new_action(points=points)).status_code == 200
    observed = Decision.objects.filter(rule="velocity").order_by("id").values_list("observed", flat=True)
    assert list(observed) == [110, 120]


@pytest.mark.redis
def test_counts_kept_by_an_older_version_are_taken_over(asgi, player, mode, settings):
    """A log and per-minute buckets without the running sums (the previous script's keys)
    are summed once, then carried on: an upgrade neither forgets nor double-counts."""
    from scoreboard_project.redis import redis_client

    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 100
    mode("velocity", "enforce")
    client = redis_client()
    seconds, _ = client.time()
    now, minute = seconds * 1000, seconds // 60
    client.zadd(f"velocity:{player.id}", {"a:40": now - 1000, "b:30": now - 2000, "c:500": now - 90_000})
    client.hset(f"gains:{player.id}", mapping={str(minute): 70, str(minute - 10_000): 500})
    # 70 points in the last minute (not the 500 of 90 s ago): 40 more cross 100 at 110.
    assert post(asgi, player, new_action(points=40)).status_code == 200
    assert Decision.objects.get(rule="velocity").observed == 110
    assert int(client.hget(f"gains:{player.id}", "t")) == 110  # the bucket of long ago dropped


@pytest.fixture
def game_server(asgi, django_db_blocker):
    """Send a game server's batch; returns its per-item results."""
    from accounts.services import service_account_create, service_token_create

    with django_db_blocker.unblock():
        token = service_token_create(account=service_account_create(name="game-server"))
    sent = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(*items: dict) -> list[dict]:
        body = json.dumps({"actions": list(items)}).encode()
        return asgi("POST", "/api/scores/batch", body, sent).json()["results"]

    return send


def test_a_game_servers_batch_counts_towards_velocity_and_review(asgi, player, mode, settings, game_server):
    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 100
    settings.MANUAL_REVIEW_THRESHOLD = 150
    mode("velocity", "enforce")
    mode("manual_review", "enforce")
    first, second, third, fourth = (new_action(points=points) for points in (60, 50, 50, 10))
    assert post(asgi, player, first).status_code == 200
    # 60 of the player's own and 50 through a game server: 110 in a minute.
    assert game_server({"user_id": player.id, **second})[0]["status"] == 200
    (flag,) = Flag.objects.filter(rule="velocity")
    assert (flag.user_id, flag.observed) == (player.id, 110)
    assert Decision.objects.get(rule="velocity").action_id == second["action_id"]
    assert game_server({"user_id": player.id, **second})[0]["replayed"] is True  # counted once
    # 160 gained > 150: the crossing action counts, the player goes under review ...
    assert game_server({"user_id": player.id, **third})[0]["status"] == 200
    (review,) = Review.objects.filter(user=player, closed_at__isnull=True)
    assert review.flag.observed == 160
    # ... and the next action is held, whichever door it comes through.
    held = game_server({"user_id": player.id, **fourth})[0]
    assert (held["status"], held["pending_review"], held["new_score"]) == (202, True, 160)
    assert post(asgi, player, new_action(points=5)).status_code == 202


# --- manual review --------------------------------------------------------------------------


@pytest.fixture
def reviewed(asgi, player, mode, settings):
    """A player whose gains crossed the review threshold: 100 + 100 > 150."""
    settings.MANUAL_REVIEW_THRESHOLD = 150
    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 1_000_000
    mode("manual_review", "enforce")
    assert post(asgi, player, new_action(points=100)).status_code == 200
    crossing = post(asgi, player, new_action(points=100))
    assert crossing.status_code == 200 and crossing.json()["new_score"] == 200  # the crossing one counts
    return player


def test_gains_over_the_threshold_put_the_player_under_review(asgi, reviewed):
    (review,) = Review.objects.filter(user=reviewed, closed_at__isnull=True)
    assert review.flag.rule == "manual_review" and review.flag.status == "open"
    assert review.flag.observed == 200 and len(review.flag.evidence["action_ids"]) == 2

    held_action = new_action(points=30)
    held = post(asgi, reviewed, held_action)
    assert held.status_code == 202
    assert held.json() == {
        "success": True,
        "user_id": reviewed.id,
        "new_score": 200,
        "rank": 1,
        "status": "pending_review",
    }
    again = post(asgi, reviewed, held_action)
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert post(asgi, reviewed, {**held_action, "points": 31}).json()["error_code"] == "DUPLICATE_ACTION"
    assert Score.objects.get(user=reviewed).total_score == 200
    assert board(asgi)["leaderboard"][0]["score"] == 200
    (stored,) = HeldAction.objects.filter(user=reviewed)
    assert (stored.action_id, stored.points, stored.status) == (held_action["action_id"], 30, "held")
    assert (
        Decision.objects.filter(
            rule="manual_review", outcome="held", action_id=held_action["action_id"]
        ).count()
        == 1
    )


def test_releasing_the_review_counts_the_held_actions(asgi, reviewed):
    held_action = new_action(points=30)
    assert post(asgi, reviewed, held_action).status_code == 202
    review = Review.objects.get(user=reviewed, closed_at__isnull=True)
    assert review_close(review=review, release=True) == 1
    assert Score.objects.get(user=reviewed).total_score == 230
    assert board(asgi)["leaderboard"][0]["score"] == 230
    # A replay of the released action is now a replay of a credited one; a new action counts.
    again = post(asgi, reviewed, held_action)
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert post(asgi, reviewed, new_action(points=5)).json()["new_score"] == 235
    assert HeldAction.objects.get(action_id=held_action["action_id"]).status == "released"
    assert Decision.objects.get(action_id=held_action["action_id"], outcome="held").verdict == "overturned"


def test_rejected_held_actions_never_count(asgi, reviewed):
    held_action = new_action(points=30)
    post(asgi, reviewed, held_action)
    held = HeldAction.objects.get(action_id=held_action["action_id"])
    assert held_reject(held=held) == 1
    assert held_reject(held=held) == 0  # decided once
    assert Score.objects.get(user=reviewed).total_score == 200
    assert Decision.objects.get(action_id=held_action["action_id"], outcome="held").verdict == "upheld"


def test_dismissing_the_flag_ends_the_review_and_releases(asgi, reviewed):
    post(asgi, reviewed, new_action(points=30))
    flag = Flag.objects.get(rule="manual_review")
    assert flag_dismiss(flag=flag, note="a good streak")
    assert not Review.objects.filter(closed_at__isnull=True).exists()
    assert Score.objects.get(user=reviewed).total_score == 230
    assert post(asgi, reviewed, new_action(points=1)).status_code == 200


def test_confirming_the_flag_reverts_the_points_and_rejects_held(asgi, reviewed, make_user, login):
    other = make_user()
    other.token = login(other)["access"]
    post(asgi, other, new_action(points=50))
    post(asgi, reviewed, new_action(points=30))  # held
    flag = Flag.objects.get(rule="manual_review")
    assert flag_confirm(flag=flag, note="bot") == 200
    assert Score.objects.get(user=reviewed).total_score == 0
    # The two reverted actions, and the held one, whose history row never counted.
    assert ScoreHistory.objects.filter(user=reviewed, voided_at__isnull=False).count() == 3
    assert HeldAction.objects.get(user=reviewed).status == "rejected"
    entries = board(asgi)["leaderboard"]
    assert [(entry["user_id"], entry["rank"]) for entry in entries][0] == (other.id, 1)
    assert flag_confirm(flag=flag) == 0  # decided once


@pytest.mark.parametrize("rule_mode", ["off", "shadow"])
def test_manual_review_off_or_in_shadow_holds_nothing(asgi, player, mode, rule_mode, settings):
    settings.MANUAL_REVIEW_THRESHOLD = 150
    mode("manual_review", rule_mode)
    for _ in range(3):
        assert post(asgi, player, new_action(points=100)).status_code == 200
    assert Score.objects.get(user=player).total_score == 300
    assert not Review.objects.exists() and not HeldAction.objects.exists()
    flags = list(Flag.objects.filter(rule="manual_review"))
    if rule_mode == "off":
        assert flags == []
    else:
        (flag,) = flags
        assert flag.status == "shadow"
        # Only the action that crossed the threshold (200), not the next one (300).
        assert Decision.objects.filter(rule="manual_review", mode="shadow", outcome="flagged").count() == 1


def test_a_rejected_held_action_is_never_credited_even_when_sent_again(asgi, reviewed):
    held_action = new_action(points=30)
    assert post(asgi, reviewed, held_action).status_code == 202
    review = Review.objects.get(user=reviewed, closed_at__isnull=True)
    assert review_close(review=review, release=False) == 1
    again = post(asgi, reviewed, held_action)  # the review is over: not held, not credited
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["new_score"] == 200
    assert Score.objects.get(user=reviewed).total_score == 200
    assert post(asgi, reviewed, new_action(points=5)).json()["new_score"] == 205


def test_after_a_dismissal_the_player_is_not_reviewed_again_at_once(asgi, reviewed):
    post(asgi, reviewed, new_action(points=30))
    assert flag_dismiss(flag=Flag.objects.get(rule="manual_review"))
    # The gains that crossed were judged: the next actions count, nothing is held.
    for _ in range(2):
        assert post(asgi, reviewed, new_action(points=100)).status_code == 200
    assert not Review.objects.filter(closed_at__isnull=True).exists()


def test_releasing_a_banned_players_actions_keeps_them_off_the_board(asgi, reviewed):
    from antifraud.services import ban_create

    post(asgi, reviewed, new_action(points=30))
    ban_create(user_id=reviewed.id, seconds=600, reason="bot")
    review = Review.objects.get(user=reviewed, closed_at__isnull=True)
    assert review_close(review=review, release=True) == 1
    assert Score.objects.get(user=reviewed).total_score == 230
    assert board(asgi)["leaderboard"] == []


def test_a_flag_sends_a_closer_look_through_the_outbox(asgi, player, mode, settings):
    from scores.models import OutboxMessage, ProcessedTask

    settings.SUSPICIOUS_VELOCITY_THRESHOLD = 100
    mode("velocity", "enforce")
    post(asgi, player, new_action(points=60))
    post(asgi, player, new_action(points=60))
    (message,) = OutboxMessage.objects.filter(task_name="antifraud.tasks.analyse_player")
    assert message.kwargs == {"user_id": player.id}
    if settings.CELERY_TASK_ALWAYS_EAGER:  # the embedded default runs it inline, once
        assert ProcessedTask.objects.filter(task_id=str(message.id)).count() == 1
    post(asgi, player, new_action(points=60))  # still above: no new flag, no new message
    assert OutboxMessage.objects.filter(task_name="antifraud.tasks.analyse_player").count() == 1
