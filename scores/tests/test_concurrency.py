"""Exactly-once under real concurrency: threads with their own PostgreSQL connections."""

import json
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from leaderboard.ranking import BoardKeys
from scoreboard_project.redis import redis_client
from scores.models import Score, ScoreHistory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def submit_all(jobs, *, workers):
    """Run (token, body) jobs at once from `workers` threads; return the responses."""
    first_wave = min(workers, len(jobs))
    barrier = threading.Barrier(first_wave)

    def run(numbered_job):
        number, (token, body) = numbered_job
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        if number < first_wave:  # the first wave starts together
            barrier.wait(timeout=30)
        try:
            return client.post("/api/scores", data=json.dumps(body), content_type="application/json")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, enumerate(jobs)))


def test_fifty_concurrent_copies_of_one_action_credit_it_once(make_user, login, action_types):
    player = make_user()
    token = login(player)["access"]
    action = {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 7}

    responses = submit_all([(token, action)] * 50, workers=50)

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 50}, statuses  # the same player's copies are replays, never 409
    firsts = [response for response in responses if "Idempotent-Replayed" not in response]
    assert len(firsts) == 1
    assert all(response.json()["new_score"] == 7 for response in responses if response.status_code == 200)
    assert ScoreHistory.objects.filter(action_id=action["action_id"]).count() == 1
    assert Score.objects.get(user=player).total_score == 7


def test_fifty_users_racing_for_one_action_id_credit_one_of_them(make_user, login, action_types):
    action = {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 9}
    jobs = [(login(make_user())["access"], action) for _ in range(50)]

    responses = submit_all(jobs, workers=50)

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: 49}, statuses
    assert ScoreHistory.objects.filter(action_id=action["action_id"]).count() == 1
    assert Score.objects.aggregate(total=Sum("total_score"))["total"] == 9


def test_two_hundred_concurrent_actions_over_twenty_users_add_up_exactly(make_user, login, action_types):
    players = [make_user() for _ in range(20)]
    tokens = {player.id: login(player)["access"] for player in players}
    jobs = []
    for number in range(200):
        player = players[number % 20]
        body = {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 1 + number % 100}
        jobs.append((tokens[player.id], body))

    responses = submit_all(jobs, workers=32)

    assert Counter(response.status_code for response in responses) == {200: 200}
    sums = dict(ScoreHistory.objects.values_list("user_id").annotate(total=Sum("points")))
    totals = dict(Score.objects.values_list("user_id", "total_score"))
    assert totals == sums
    assert sum(totals.values()) == sum(body["points"] for _, body in jobs)
    client = redis_client()
    if client is not None:
        index = {
            int(member): int(score)
            for member, score in client.zrange(BoardKeys.for_board("global").index, 0, -1, withscores=True)
        }
        assert index == totals
