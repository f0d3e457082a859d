"""Group commit: one statement for many credits, exact answers, failures kept apart."""

import asyncio
import uuid

import pytest
from django.db.models import Sum

from scoreboard_project import aio
from scores.groupcommit import Pending, batch_credits
from scores.ledger import Credit, ledger_credit_async
from scores.models import Score, ScoreHistory
from scores.validation import ScoreAction


def action(points: int, action_id: str | None = None) -> ScoreAction:
    return ScoreAction(action_id=action_id or str(uuid.uuid4()), action_type="quest", points=points)


def test_each_action_gets_the_total_as_it_stood_right_after_it():
    items = [Pending(1, action(10), None), Pending(2, action(5), None), Pending(1, action(7), None)]
    rows = [
        (items[0].action.action_id, 117, "t1"),
        (items[1].action.action_id, 5, "t2"),
        (items[2].action.action_id, 117, "t1"),
    ]
    assert batch_credits(items, rows) == [Credit(110, "t1"), Credit(5, "t2"), Credit(117, "t1")]


def test_an_action_the_statement_did_not_credit_gets_no_total():
    items = [Pending(1, action(10), None), Pending(1, action(7), None)]
    rows = [(items[1].action.action_id, 57, "t")]
    assert batch_credits(items, rows) == [Credit(None, None), Credit(57, "t")]


async def _gather(*submissions):
    return await asyncio.gather(*submissions, return_exceptions=True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_credits_share_statements_and_each_gets_its_own_answer(make_user, sql_log):
    players = [make_user() for _ in range(5)]
    actions = [(players[number % 5].id, action(1 + number)) for number in range(100)]
    log = sql_log()

    credits = aio.run(
        _gather(*(ledger_credit_async(user_id=user_id, action=act) for user_id, act in actions))
    )

    batches = [sql for sql in log.queries if sql.lstrip().startswith("WITH input AS")]
    assert 1 <= len(batches) < 50, len(batches)
    totals = dict(Score.objects.values_list("user_id", "total_score"))
    for player in players:
        mine = [
            (act, credit)
            for (user_id, act), credit in zip(actions, credits, strict=True)
            if user_id == player.id
        ]
        answers = sorted(credit.total for _, credit in mine)
        # Every answer is a distinct running total of this player, ending at the final total.
        assert len(set(answers)) == len(mine) and answers[-1] == totals[player.id]
        assert totals[player.id] == sum(act.points for act, _ in mine)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_action_does_not_fail_its_neighbours(make_user):
    player = make_user()
    good = [action(3), action(4)]
    results = aio.run(
        _gather(
            ledger_credit_async(user_id=player.id, action=good[0]),
            ledger_credit_async(user_id=987654321, action=action(5)),  # no such user: FK violation
            ledger_credit_async(user_id=player.id, action=good[1]),
        )
    )
    assert isinstance(results[1], Exception)
    assert sorted(result.total for result in (results[0], results[2])) == [3, 7]
    assert Score.objects.get(user=player).total_score == 7
    assert ScoreHistory.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_repeat_inside_one_batch_is_credited_once(make_user):
    player = make_user()
    same = action(9)
    results = aio.run(_gather(*(ledger_credit_async(user_id=player.id, action=same) for _ in range(10))))
    assert sorted(result.total is None for result in results) == [False] + [True] * 9
    assert ScoreHistory.objects.filter(action_id=same.action_id).count() == 1
    assert ScoreHistory.objects.aggregate(total=Sum("points"))["total"] == 9


@pytest.mark.postgres
@pytest.mark.django_db
def test_each_credit_writes_only_the_history_indexes_something_reads():
    """No LIKE index on action_id (unique=True would build one) and no index on user alone
    (idx_history_user_time starts with it): two index entries fewer per credit."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'score_history'")
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {
        "score_history_pkey",
        "uniq_history_action_id",
        "idx_history_user_time",
        "idx_history_time",
        "score_history_voided_by_id_fa9f332f",
    }
    assert (
        "UNIQUE" in indexes["uniq_history_action_id"] and "(action_id)" in indexes["uniq_history_action_id"]
    )
