"""The mixed traffic scenario through the real API: who each rule catches."""

import pytest
from django.core.management import call_command

from accounts.models import User
from antifraud.scenario import BOT, BURST, FARM, HONEST, Options, run_scenario

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_scenario_catches_every_cheater_and_no_honest_player(action_types):
    report = run_scenario(Options(honest=5, bots=2, farm=5, seed=3))
    rules = report["rules"]
    assert report["players"] == {HONEST: 5, BOT: 2, BURST: 1, FARM: 5}
    assert rules["identical_sequences"].get(BOT) == 2
    assert rules["rate_limit_edge"].get(BURST) == 1 and rules["velocity"].get(BURST) == 1
    assert rules["manual_review"].get(BURST) == 1 and report["answers"][BURST].get(202, 0) > 0
    assert rules["ip_farm"].get(FARM) == 5
    assert (report["cheaters_caught"], report["cheaters"]) == (8, 8)
    assert report["honest_flagged"] == 0
    assert all(set(statuses) <= {200, 202} for statuses in report["answers"].values())
    assert not User.objects.filter(username__startswith="scn").exists()  # cleaned up


def test_the_command_prints_the_table(action_types, capsys):
    call_command("fraud_scenario", "--honest", "2", "--bots", "2", "--farm", "5")
    out = capsys.readouterr().out
    assert "cheaters caught by at least one rule" in out and "ip_farm" in out
