"""Pattern analysis on generated traffic: bots are flagged, human-like players are not."""

import random
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from antifraud.models import Decision, Flag
from antifraud.services import rule_mode_set
from antifraud.tasks import analyse_patterns
from scores.models import ScoreHistory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def record(user, intervals, *, steps=None, ip="198.51.100.1", start=None):
    """History rows for `user`: one action after each interval (seconds), ending before NOW."""
    at = start or NOW - timedelta(seconds=sum(intervals) + 60)
    rows = []
    for position, gap in enumerate(intervals):
        at += timedelta(seconds=gap)
        kind, points = steps[position % len(steps)] if steps else ("quest", 10)
        rows.append(
            ScoreHistory(
                user=user,
                action_id=str(uuid.uuid4()),
                action_type=kind,
                points=points,
                request_hash="x",
                client_ip=ip,
                created_at=at,
            )
        )
    ScoreHistory.objects.bulk_create(rows)
    return rows


def flagged(rule):
    return sorted(Flag.objects.filter(rule=rule).values_list("user_id", flat=True))


def test_regular_timing_is_flagged_and_human_timing_is_not(make_user):
    rng = random.Random(7)
    bot, human = make_user("bot"), make_user("human")
    record(bot, [5 + rng.uniform(-0.05, 0.05) for _ in range(20)])
    record(human, [rng.expovariate(1 / 5) for _ in range(20)], ip="198.51.100.2")
    assert analyse_patterns.apply().get()["scripted_timing"] == 1
    assert flagged("scripted_timing") == [bot.id]
    flag = Flag.objects.get(rule="scripted_timing")
    assert flag.status == "open" and flag.observed < 0.1 and flag.threshold == 0.1
    assert len(flag.evidence["timestamps"]) == 20 and flag.evidence["mean_interval_seconds"] == pytest.approx(
        5, abs=0.05
    )
    assert Decision.objects.get(flag=flag).outcome == "flagged"


def test_too_few_actions_say_nothing(make_user):
    bot = make_user()
    record(bot, [5] * 8)  # PATTERN_MIN_ACTIONS is 10
    analyse_patterns.apply()
    assert flagged("scripted_timing") == []


def test_identical_sequences_across_accounts(make_user):
    rng = random.Random(3)
    script = [
        ("quest", 10),
        ("match_win", 50),
        ("quest", 25),
        ("level_up", 300),
        ("quest", 10),
        ("match_win", 80),
    ] * 2
    twins = [make_user(f"twin{n}") for n in range(3)]
    for n, twin in enumerate(twins):
        record(twin, [rng.expovariate(1 / 9) for _ in script], steps=script, ip=f"198.51.100.{10 + n}")
    honest = make_user("honest")
    steps = [(rng.choice(["quest", "match_win"]), rng.randint(10, 99)) for _ in range(12)]
    record(honest, [rng.expovariate(1 / 9) for _ in steps], steps=steps, ip="198.51.100.40")
    analyse_patterns.apply()
    assert flagged("identical_sequences") == sorted(twin.id for twin in twins)
    evidence = Flag.objects.get(rule="identical_sequences", user=twins[0]).evidence
    assert evidence["other_accounts"] == sorted([twins[1].id, twins[2].id]) and len(evidence["sequence"]) == 8


def test_a_player_riding_the_rate_limit_edge(make_user, settings):
    settings.RATE_LIMIT_PER_USER, settings.RATE_LIMIT_WINDOW = 10, 60
    rng = random.Random(5)
    rider, busy = make_user("rider"), make_user("busy")
    burst = [rng.uniform(4.0, 6.0) for _ in range(10)]  # 10 actions in under a minute
    record(rider, (burst + [30]) * 3)
    record(busy, [rng.uniform(6.7, 9.0) for _ in range(33)], ip="198.51.100.2")  # at most 9 a minute
    analyse_patterns.apply()
    assert flagged("rate_limit_edge") == [rider.id]
    assert Flag.objects.get(rule="rate_limit_edge").observed == 3


def test_a_farm_of_accounts_behind_one_address(make_user):
    rng = random.Random(11)
    farm = [make_user(f"farm{n}") for n in range(6)]
    for account in farm:
        record(account, [rng.expovariate(1 / 20) for _ in range(3)], ip="203.0.113.5")
    for n in range(2):
        record(make_user(f"flatmate{n}"), [rng.expovariate(1 / 20) for _ in range(3)], ip="198.51.100.9")
    analyse_patterns.apply()
    (flag,) = Flag.objects.filter(rule="ip_farm")
    assert (flag.client_ip, flag.user_id, flag.observed) == ("203.0.113.5", None, 6)
    assert flag.evidence["user_ids"] == sorted(account.id for account in farm)


def test_running_twice_raises_each_finding_once(make_user):
    bot = make_user()
    record(bot, [5] * 20)
    assert analyse_patterns.apply().get()["scripted_timing"] == 1
    assert analyse_patterns.apply().get()["scripted_timing"] == 0
    call_command("analyse_patterns")
    assert Flag.objects.filter(rule="scripted_timing").count() == 1


@pytest.mark.parametrize("rule_mode", ["off", "shadow"])
def test_pattern_rules_off_or_in_shadow(make_user, rule_mode):
    rule_mode_set(code="scripted_timing", mode=rule_mode)
    bot = make_user()
    record(bot, [5] * 20)
    analyse_patterns.apply()
    statuses = list(Flag.objects.filter(rule="scripted_timing").values_list("status", flat=True))
    assert statuses == ([] if rule_mode == "off" else ["shadow"])


def test_voided_history_is_not_evidence(make_user):
    bot = make_user()
    record(bot, [5] * 20)
    ScoreHistory.objects.filter(user=bot).update(voided_at=timezone.now())
    analyse_patterns.apply()
    assert not Flag.objects.exists()


def test_fraud_report_summarises_the_queue(make_user, capsys):
    bot = make_user("reportbot")
    record(bot, [5] * 20)
    analyse_patterns.apply()
    call_command("fraud_report")
    out = capsys.readouterr().out
    assert "Open flags: 1" in out and "reportbot" in out and "scripted_timing" in out
    assert "velocity               enforce  threshold 100" in out
