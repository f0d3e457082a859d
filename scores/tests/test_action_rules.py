"""Temporal validation and client signatures (pure rules, then through the door)."""

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from conftest import new_action
from scoreboard_project.errors import Forbidden, InvalidAction
from scores.models import ActionType, ScoreHistory
from scores.selectors import action_rules_forget
from scores.validation import (
    ActionRule,
    ScoreAction,
    action_check_signature,
    action_check_time,
    signature_payload,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SIGNED = ActionRule("boss", 1, 500, True, signature_required=True, signing_secret="k" * 32)


def action(**overrides) -> ScoreAction:
    values = {"action_id": str(uuid.uuid4()), "action_type": "boss", "points": 50, **overrides}
    return ScoreAction(**values)


def sign(act: ScoreAction, user_id: int, secret: str = "k" * 32) -> str:
    return hmac.new(secret.encode(), signature_payload(act, user_id=user_id), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("offset, ok", [(0, True), (29, True), (31, False), (-299, True), (-301, False)])
def test_client_timestamps_must_be_recent_and_not_ahead(offset, ok):
    act = action(client_timestamp=NOW + timedelta(seconds=offset))
    if ok:
        action_check_time(act, now=NOW, max_skew=30, max_age=300)
    else:
        with pytest.raises(InvalidAction) as caught:
            action_check_time(act, now=NOW, max_skew=30, max_age=300)
        assert set(caught.value.details) == {"client_timestamp"}


def test_no_timestamp_is_not_checked():
    action_check_time(action(), now=NOW, max_skew=0, max_age=1)


def test_a_correct_signature_passes_and_any_change_breaks_it():
    act = action(client_timestamp=NOW, client_timestamp_text="2026-11-29T12:00:00Z")
    good = sign(act, user_id=7)
    action_check_signature(ScoreAction(**{**_fields(act), "signature": good}), rule=SIGNED, user_id=7)
    for forged in (
        ScoreAction(**{**_fields(act), "signature": good, "points": 51}),  # inflated points
        ScoreAction(**{**_fields(act), "signature": good}),  # another player reusing it
        ScoreAction(**{**_fields(act), "signature": sign(act, 7, secret="x" * 32)}),  # wrong key
        ScoreAction(**{**_fields(act), "signature": None}),  # missing
    ):
        user = 8 if forged.signature == good and forged.points == 50 else 7
        with pytest.raises(Forbidden):
            action_check_signature(forged, rule=SIGNED, user_id=user)


def _fields(act: ScoreAction) -> dict:
    return {name: getattr(act, name) for name in ScoreAction.__slots__}


@pytest.mark.django_db(transaction=True)
def test_the_door_refuses_unsigned_and_forged_actions_of_a_signed_type(
    asgi, make_user, login, action_types, settings
):
    ActionType.objects.create(
        name="boss", min_points=1, max_points=500, signature_required=True, signing_secret="s" * 32
    )
    action_rules_forget()
    user = make_user()
    headers = {"Authorization": f"Bearer {login(user)['access']}", "Content-Type": "application/json"}

    def post(body):
        return asgi("POST", "/api/scores", json.dumps(body).encode(), headers)

    stamp = datetime.now(UTC).isoformat()
    body = new_action("boss", 200, client_timestamp=stamp)
    parsed = ScoreAction(body["action_id"], "boss", 200, client_timestamp_text=stamp)
    signature = hmac.new(b"s" * 32, signature_payload(parsed, user_id=user.id), hashlib.sha256).hexdigest()

    unsigned = post(body)
    assert unsigned.status_code == 403 and unsigned.json()["error_code"] == "FORBIDDEN"
    forged = post({**body, "signature": signature, "points": 400})
    assert forged.status_code == 403
    assert post({**body, "signature": signature}).status_code == 200
    assert ScoreHistory.objects.count() == 1
    late = post(
        new_action("quest", 5, client_timestamp=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
    )
    assert late.status_code == 400 and set(late.json()["details"]) == {"client_timestamp"}
