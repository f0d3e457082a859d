"""The pure validation of a score action: every door shares it, so it is tested alone."""

import pytest

from scoreboard_project.errors import InvalidAction
from scores.validation import ActionRule, ScoreAction, action_check_bounds, action_parse

ACTION_ID = "6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11"
QUEST = ActionRule("quest", 1, 100, True)


def body(**overrides):
    return {"action_id": ACTION_ID, "action_type": "quest", "points": 10, **overrides}


def problem(payload) -> InvalidAction:
    with pytest.raises(InvalidAction) as caught:
        action_parse(payload)
    return caught.value


def test_a_well_formed_body_parses_and_ignores_unknown_fields():
    action = action_parse(body(user_id=1, total_score=10**9, is_staff=True))
    assert action == ScoreAction(action_id=ACTION_ID, action_type="quest", points=10)


def test_action_id_is_normalised_to_lowercase_so_case_variants_are_one_action():
    assert action_parse(body(action_id=ACTION_ID.upper())).action_id == ACTION_ID


@pytest.mark.parametrize("payload", [[], "x", 3, None, [body()]])
def test_a_body_that_is_not_an_object_is_refused(payload):
    assert problem(payload).code == "INVALID_ACTION"


@pytest.mark.parametrize("field", ["action_id", "action_type", "points"])
def test_each_required_field_is_required(field):
    payload = body()
    del payload[field]
    assert problem(payload).details == {field: "this field is required"}


@pytest.mark.parametrize("points", ["10", 10.0, 10.5, True, None, [10], {"v": 10}])
def test_points_must_be_a_json_integer(points):
    assert set(problem(body(points=points)).details) == {"points"}


@pytest.mark.parametrize(
    "action_id",
    [
        123,
        "not-a-uuid",
        "",
        "6f1c2c528f0e4d8e9a516f0b8d2f0a11",
        "{" + ACTION_ID + "}",
        None,
        # 36 characters that uuid.UUID() accepts but the schema's `format: uuid` does not
        # (found by schemathesis): hyphens anywhere, braces.
        "----" + ACTION_ID.replace("-", ""),
        "{" + ACTION_ID.replace("-", "") + "}--",
    ],
)
def test_action_id_must_be_a_uuid_string_in_canonical_form(action_id):
    assert set(problem(body(action_id=action_id)).details) == {"action_id"}


@pytest.mark.parametrize("action_type", [7, "", "x" * 51, None, ["quest"]])
def test_action_type_must_be_a_short_string(action_type):
    assert set(problem(body(action_type=action_type)).details) == {"action_type"}


@pytest.mark.parametrize("stamp", ["yesterday", 1732881600, "2026-11-29T12:00:00"])
def test_client_timestamp_must_be_an_aware_iso_datetime(stamp):
    assert set(problem(body(client_timestamp=stamp)).details) == {"client_timestamp"}


def test_client_timestamp_with_zone_parses():
    action = action_parse(body(client_timestamp="2026-11-29T12:00:00Z"))
    assert action.client_timestamp.isoformat() == "2026-11-29T12:00:00+00:00"


# "" and whitespace-separated hex used to pass (bytes.fromhex accepts both); schemathesis
# found "" accepted although the schema asks for whole hex bytes.
@pytest.mark.parametrize("signature", ["zz", 12, "a" * 513, "", "ab cd", "abc", " ab"])
def test_signature_must_be_hex(signature):
    assert set(problem(body(signature=signature)).details) == {"signature"}


def test_digest_differs_when_any_submitted_value_differs():
    base = action_parse(body())
    assert base.digest() == action_parse(body()).digest()
    assert base.digest() != action_parse(body(points=11)).digest()
    assert base.digest() != action_parse(body(action_type="match_win")).digest()
    assert base.digest() != action_parse(body(signature="ab")).digest()
    assert base.digest() != action_parse(body(client_timestamp="2026-11-29T12:00:00Z")).digest()


@pytest.mark.parametrize("points", [1, 50, 100])
def test_points_inside_the_type_bounds_pass(points):
    action_check_bounds(action_parse(body(points=points)), rule=QUEST, max_points=1000)


@pytest.mark.parametrize("points", [0, -5, 101, 10**30])
def test_points_outside_the_type_bounds_are_refused_with_the_bounds_named(points):
    with pytest.raises(InvalidAction) as caught:
        action_check_bounds(action_parse(body(points=points)), rule=QUEST, max_points=1000)
    assert caught.value.details == {"points": "must be between 1 and 100 for action type 'quest'"}


def test_the_global_cap_wins_over_a_larger_type_maximum():
    with pytest.raises(InvalidAction) as caught:
        action_check_bounds(
            action_parse(body(points=60)), rule=ActionRule("quest", 1, 100, True), max_points=50
        )
    assert caught.value.details == {"points": "must be between 1 and 50 for action type 'quest'"}


def test_unknown_and_disabled_action_types_are_refused():
    with pytest.raises(InvalidAction) as unknown:
        action_check_bounds(action_parse(body()), rule=None, max_points=1000)
    assert unknown.value.details == {"action_type": "unknown action type 'quest'"}
    with pytest.raises(InvalidAction) as disabled:
        action_check_bounds(action_parse(body()), rule=ActionRule("quest", 1, 100, False), max_points=1000)
    assert disabled.value.details == {"action_type": "action type 'quest' is disabled"}
