"""Pure validation of a score action: no I/O, so every door can share it."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scoreboard_project.errors import Forbidden, InvalidAction

MAX_ACTION_TYPE_LENGTH = 50
MAX_SIGNATURE_LENGTH = 512
# The forms the OpenAPI schema documents (scores/serializers.py), so that what the schema
# calls invalid is refused: a UUID as 8-4-4-4-12 hex digits, a signature as whole hex bytes.
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SIGNATURE_RE = re.compile(r"(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True, slots=True)
class ActionRule:
    """The bounds of one action type, as operators set them in the admin."""

    name: str
    min_points: int
    max_points: int
    enabled: bool
    signature_required: bool = False
    signing_secret: str = ""
    rate_per_window: int | None = None  # this type's own limit per player and window


@dataclass(frozen=True, slots=True)
class ScoreAction:
    action_id: str
    action_type: str
    points: int
    client_timestamp: datetime | None = None
    signature: str | None = None
    client_timestamp_text: str = ""  # exactly as sent: what a client signs
    # Where it came from (not part of the action: a replay from another address is the same).
    client_ip: str | None = field(default=None, compare=False)

    def digest(self) -> str:
        """Fingerprint of what was submitted; a replay must carry the same one."""
        stamp = self.client_timestamp.isoformat() if self.client_timestamp else ""
        canonical = "\n".join((self.action_type, str(self.points), stamp, self.signature or ""))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _invalid(field: str, problem: str) -> InvalidAction:
    return InvalidAction(f"{field}: {problem}", details={field: problem})


def action_parse(payload: object, *, client_ip: str | None = None) -> ScoreAction:
    """Check the JSON body's shape and types strictly; unknown fields are ignored."""
    if not isinstance(payload, dict):
        raise InvalidAction("The body must be a JSON object.")
    missing = [field for field in ("action_id", "action_type", "points") if field not in payload]
    if missing:
        raise InvalidAction(
            f"Missing field(s): {', '.join(missing)}.",
            details={field: "this field is required" for field in missing},
        )
    action_id = payload["action_id"]
    if not isinstance(action_id, str):
        raise _invalid("action_id", "must be a UUID string")
    if not UUID_RE.fullmatch(action_id):
        raise _invalid("action_id", "must be a UUID in its 36-character form")

    action_type = payload["action_type"]
    if not isinstance(action_type, str) or not action_type:
        raise _invalid("action_type", "must be a non-empty string")
    if len(action_type) > MAX_ACTION_TYPE_LENGTH:
        raise _invalid("action_type", f"must be at most {MAX_ACTION_TYPE_LENGTH} characters")

    points = payload["points"]
    if not isinstance(points, int) or isinstance(points, bool):
        raise _invalid("points", "must be a JSON integer")

    client_timestamp = None
    raw_stamp = payload.get("client_timestamp")
    if raw_stamp is not None:
        if not isinstance(raw_stamp, str):
            raise _invalid("client_timestamp", "must be an ISO-8601 string")
        try:
            client_timestamp = datetime.fromisoformat(raw_stamp)
        except ValueError:
            raise _invalid("client_timestamp", "must be an ISO-8601 date and time") from None
        if client_timestamp.tzinfo is None:
            raise _invalid("client_timestamp", "must carry a time zone, e.g. 'Z'")

    signature = payload.get("signature")
    if signature is not None:
        if (
            not isinstance(signature, str)
            or len(signature) > MAX_SIGNATURE_LENGTH
            or not SIGNATURE_RE.fullmatch(signature)
        ):
            raise _invalid("signature", "must be a hex string")
        signature = signature.lower()

    return ScoreAction(
        action_id=action_id.lower(),  # the canonical form, as str(UUID(action_id)) would give
        action_type=action_type,
        points=points,
        client_timestamp=client_timestamp,
        signature=signature,
        client_timestamp_text=raw_stamp or "",
        client_ip=client_ip,
    )


def action_check_bounds(action: ScoreAction, *, rule: ActionRule | None, max_points: int) -> None:
    """Refuse unknown or disabled action types and points outside the bounds."""
    if rule is None:
        raise _invalid("action_type", f"unknown action type '{action.action_type}'")
    if not rule.enabled:
        raise _invalid("action_type", f"action type '{rule.name}' is disabled")
    upper = min(rule.max_points, max_points)
    if not rule.min_points <= action.points <= upper:
        raise _invalid(
            "points", f"must be between {rule.min_points} and {upper} for action type '{rule.name}'"
        )


def batch_parse(payload: object, *, max_actions: int) -> list[tuple[int, ScoreAction] | InvalidAction]:
    """Parse {"actions": [{"user_id": ..., <action fields>}, ...]}; each item stands alone."""
    if not isinstance(payload, dict) or not isinstance(payload.get("actions"), list):
        raise InvalidAction('The body must be {"actions": [...]}.', details={"actions": "must be a list"})
    actions = payload["actions"]
    if not 1 <= len(actions) <= max_actions:
        raise InvalidAction(
            f"A batch holds 1 to {max_actions} actions.",
            details={"actions": f"must hold 1 to {max_actions} items"},
        )
    items: list[tuple[int, ScoreAction] | InvalidAction] = []
    for item in actions:
        try:
            user_id = item.get("user_id") if isinstance(item, dict) else None
            if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id < 1:
                raise _invalid("user_id", "must be a positive JSON integer")
            items.append((user_id, action_parse(item)))
        except InvalidAction as error:
            items.append(error)
    return items


def action_check_time(action: ScoreAction, *, now: datetime, max_skew: int, max_age: int) -> None:
    """Refuse a client_timestamp too far in the future or too old (when one is given)."""
    stamp = action.client_timestamp
    if stamp is None:
        return
    if stamp > now + timedelta(seconds=max_skew):
        raise _invalid("client_timestamp", f"is more than {max_skew} s in the future")
    if stamp < now - timedelta(seconds=max_age):
        raise _invalid("client_timestamp", f"is more than {max_age} s old")


def signature_payload(action: ScoreAction, *, user_id: int) -> bytes:
    """The canonical form a client signs: user, action id, type, points and the timestamp
    exactly as sent (empty without one)."""
    stamp = action.client_timestamp_text
    return f"{user_id}\n{action.action_id}\n{action.action_type}\n{action.points}\n{stamp}".encode()


def action_check_signature(action: ScoreAction, *, rule: ActionRule, user_id: int) -> None:
    """Where the action type requires it, the HMAC-SHA256 signature must match (403 otherwise).

    A signature sent for a type that does not require one is checked too, if the type has a key.
    """
    if not rule.signing_secret or (not rule.signature_required and action.signature is None):
        if rule.signature_required:
            raise Forbidden("This action type requires a client signature, and none is configured.")
        return
    if action.signature is None:
        raise Forbidden("This action type requires a client signature.")
    expected = hmac.new(rule.signing_secret.encode(), signature_payload(action, user_id=user_id), "sha256")
    if not hmac.compare_digest(expected.hexdigest(), action.signature):
        raise Forbidden("The client signature does not match.")
