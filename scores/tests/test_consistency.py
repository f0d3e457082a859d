"""manage.py reconcile_scores and archive_history, on the database of the pass (PostgreSQL
or SQLite) and, where Redis is configured, against the real ranking index."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from conftest import new_action
from leaderboard.selectors import board_keys
from scoreboard_project.errors import DuplicateAction
from scoreboard_project.redis import redis_client
from scores.models import Score, ScoreHistory, ScoreHistoryArchive
from scores.services import score_submit_sync
from scores.validation import action_parse

pytestmark = pytest.mark.django_db(transaction=True)


def credit(user, points: int, payload: dict | None = None):
    return score_submit_sync(user_id=user.id, action=action_parse(payload or new_action(points=points)))


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def run_failing(*args) -> tuple[int, str]:
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(*args, stdout=out)
    return failure.value.returncode, out.getvalue() + str(failure.value)


@pytest.fixture
def players(make_user, action_types):
    ada, bob = make_user(), make_user()
    for points in (10, 20, 30):
        credit(ada, points)
    credit(bob, 50)
    return ada, bob


def test_a_consistent_ledger_passes(players):
    output = run("reconcile_scores")
    assert "Consistent" in output and "Checked 2 players: 4 history rows live, 0 archived" in output


def test_differences_are_reported_with_status_1_and_fixed_on_request(players):
    ada, bob = players
    Score.objects.filter(user=ada).update(total_score=F("total_score") + 5)  # a total that drifted
    # A moderator voided one of bob's actions, and his total was not lowered.
    ScoreHistory.objects.filter(user=bob).update(voided_at=timezone.now())
    client = redis_client()
    if client is not None:
        client.zrem(board_keys().index, str(ada.id))  # and the index lost an entry

    status, output = run_failing("reconcile_scores")
    assert status == 1
    assert f"user {ada.id}: total 65, history 60 (live 60 + archived 0)" in output
    assert f"user {bob.id}: total 50, history 0 (live 0 + archived 0)" in output
    if client is not None:
        assert f"user {ada.id}: index missing, database 65" in output
    assert "run with --fix" in output

    fixed = run("reconcile_scores", "--fix")
    assert "Fixed: 2 totals recomputed" in fixed and "Consistent after the fix." in fixed
    assert dict(Score.objects.values_list("user_id", "total_score")) == {ada.id: 60, bob.id: 0}
    if client is not None:
        assert int(client.zscore(board_keys().index, str(ada.id))) == 60
    assert "Consistent" in run("reconcile_scores")


def test_an_unreachable_redis_is_a_failure_with_status_2(players, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    status, output = run_failing("reconcile_scores")
    assert status == 2 and "Redis is unreachable" in output


def test_archive_moves_old_rows_without_changing_totals_and_is_idempotent(players):
    ada, bob = players
    old = list(ScoreHistory.objects.filter(user=ada).order_by("id")[:2])
    ScoreHistory.objects.filter(id__in=[row.id for row in old]).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    totals = dict(Score.objects.values_list("user_id", "total_score"))

    output = run("archive_history", "--older-than", "30", "--batch-size", "1")
    assert "archived 1 rows (1 batches)" in output and "archived 2 rows (2 batches)" in output
    assert "Archived 2 rows in 2 batches; score_history now holds 2 rows, score_history_archive 2." in output
    assert set(ScoreHistoryArchive.objects.values_list("action_id", flat=True)) == {
        row.action_id for row in old
    }
    assert dict(Score.objects.values_list("user_id", "total_score")) == totals
    assert "archived 0 rows" not in run("archive_history", "--older-than", "30")
    assert "Archived 0 rows" in run("archive_history", "--older-than", "30")
    assert "Checked 2 players: 2 history rows live, 2 archived" in run("reconcile_scores")

    # An archived action_id is still used: the same body is a replay, another body a 409.
    archived = old[0]
    payload = {
        "action_id": archived.action_id,
        "action_type": archived.action_type,
        "points": archived.points,
    }
    assert credit(ada, 0, payload).replayed
    with pytest.raises(DuplicateAction):
        credit(ada, 0, {**payload, "points": archived.points + 1})
    assert Score.objects.get(user=ada).total_score == totals[ada.id]


def test_archive_needs_a_number_of_days():
    status, output = run_failing("archive_history", "--older-than", "-1")
    assert status == 1 and "--older-than" in output


def test_progress_is_shown_for_long_runs(players):
    from scores import consistency

    lines: list[str] = []
    consistency.totals_check(progress=lines.append, chunk=1)
    assert lines == ["  totals: 1/2 players checked", "  totals: 2/2 players checked"]
