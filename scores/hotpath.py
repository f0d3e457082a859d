"""POST /api/scores on the lean async door (see scoreboard_project.hotpath)."""

from __future__ import annotations

from django.conf import settings

from accounts.authentication import bearer_token, user_from_bearer_async
from accounts.tokens import BATCH_SCOPE, access_token_verify
from scoreboard_project.errors import Forbidden, Unauthorized
from scoreboard_project.hotpath import HotRequest, HotResponse, json_response
from scores.services import score_submit_batch, score_submit_request
from scores.validation import action_parse, batch_parse

REPLAYED = ((b"idempotent-replayed", b"true"),)


async def score_submit_endpoint(request: HotRequest) -> HotResponse:
    header = request.header(b"authorization")
    if not header:
        raise Unauthorized("A Bearer token is required.")
    claims = access_token_verify(bearer_token(header))
    action = action_parse(request.json(), client_ip=request.client_ip())
    outcome, admission = await score_submit_request(user_id=claims.user_id, sid=claims.sid, action=action)
    headers = tuple((name.lower().encode(), value.encode()) for name, value in admission.headers().items())
    return json_response(outcome.status, outcome.body, headers + (REPLAYED if outcome.replayed else ()))


async def score_batch_endpoint(request: HotRequest) -> HotResponse:
    user = await user_from_bearer_async(request.header(b"authorization"))
    if user.scope != BATCH_SCOPE:
        raise Forbidden("This endpoint takes a service account's token.")
    items = batch_parse(request.json(), max_actions=settings.BATCH_MAX_ACTIONS)
    return json_response(200, await score_submit_batch(items=items))
