"""POST /api/scores on the lean async door (see scoreboard_project.hotpath)."""

from __future__ import annotations

from accounts.authentication import user_from_bearer_async
from scoreboard_project.hotpath import HotRequest, HotResponse, json_response
from scores.services import score_submit
from scores.validation import action_parse

REPLAYED = ((b"idempotent-replayed", b"true"),)


async def score_submit_endpoint(request: HotRequest) -> HotResponse:
    user = await user_from_bearer_async(request.header(b"authorization"))
    outcome = await score_submit(user_id=user.id, action=action_parse(request.json()))
    return json_response(outcome.status, outcome.body, REPLAYED if outcome.replayed else ())
