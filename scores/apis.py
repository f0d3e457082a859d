from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tokens import BATCH_SCOPE
from scoreboard_project import aio
from scoreboard_project.clientip import ip_or_none, request_client_address
from scoreboard_project.errors import Forbidden
from scoreboard_project.openapi import error_headers, error_responses
from scores.serializers import BatchInput, BatchOutput, ScoreHeldOutput, ScoreSubmitInput, ScoreSubmitOutput
from scores.services import score_submit_batch, score_submit_request
from scores.validation import action_parse, batch_parse

SUBMIT_ERRORS = (400, 401, 403, 409, 413, 429, 503)
BATCH_ERRORS = (400, 401, 403, 413, 503)
ACTION = "6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11"

# Response headers of a score update (antifraud/ratelimits.py and scores/hotpath.py).
SUBMIT_HEADERS = [
    OpenApiParameter(
        "Idempotent-Replayed",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 202],
        enum=["true"],
        description="Present (`true`) only on a replay of an action already credited: the original "
        "status and body again, the score moved once.",
    ),
    OpenApiParameter(
        "RateLimit-Policy",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 202, 429],
        description='The player\'s limit, e.g. `"player";q=10;w=60` (draft IETF RateLimit headers).',
    ),
    OpenApiParameter(
        "RateLimit",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 202, 429],
        description='Updates left and seconds until the window frees one, e.g. `"player";r=9;t=60`.',
    ),
    *error_headers(*SUBMIT_ERRORS),
]


class ScoreSubmitApi(APIView):
    """POST /api/scores for synchronous clients (tests) and the schema; production traffic takes
    the async door in scores/hotpath.py to the same service."""

    @extend_schema(
        operation_id="score_submit",
        summary="Credit one scored action to the caller",
        description="API.md section 1. Types are strict (`points` a JSON integer, `action_id` and "
        "`action_type` strings); unknown fields are ignored, never stored. The same user sending "
        "the same `action_id` and body again gets the original status and body with "
        "`Idempotent-Replayed: true`; another body or another user gets 409. Counted against "
        "RATE_LIMIT_PER_USER per RATE_LIMIT_WINDOW (and RATE_LIMIT_GLOBAL). Served by the lean "
        "ASGI door (scores/hotpath.py); documented through this DRF twin.",
        request=ScoreSubmitInput,
        responses={
            200: OpenApiResponse(
                ScoreSubmitOutput, description="Credited (or a replay of a credited action)."
            ),
            202: OpenApiResponse(
                ScoreHeldOutput,
                description="Held for review: `new_score` and `rank` are unchanged until a moderator "
                "releases the action.",
            ),
            **error_responses(*SUBMIT_ERRORS),
        },
        parameters=SUBMIT_HEADERS,
        examples=[
            OpenApiExample(
                "quest",
                request_only=True,
                value={"action_id": ACTION, "action_type": "quest", "points": 10},
            ),
            OpenApiExample(
                "signed",
                request_only=True,
                value={
                    "action_id": ACTION,
                    "action_type": "level_up",
                    "points": 500,
                    "client_timestamp": "2026-11-29T12:00:00Z",
                    "signature": "9f2c4a0d5e1b7c3a8f6e2d4b1a0c9e8f7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a",
                },
            ),
            OpenApiExample(
                "credited",
                response_only=True,
                status_codes=["200"],
                value={"success": True, "user_id": 42, "new_score": 1530, "rank": 7},
            ),
            OpenApiExample(
                "held for review",
                response_only=True,
                status_codes=["202"],
                value={
                    "success": True,
                    "user_id": 42,
                    "new_score": 1520,
                    "rank": 8,
                    "status": "pending_review",
                },
            ),
        ],
    )
    def post(self, request):
        # DRF's authentication checked the session.
        action = action_parse(request.data, client_ip=ip_or_none(request_client_address(request)))
        outcome, admission = aio.run(
            score_submit_request(
                user_id=request.user.id, sid=request.user.sid, action=action, session_checked=True
            )
        )
        headers = admission.headers()
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(outcome.body, status=outcome.status, headers=headers)


class ScoreBatchApi(APIView):
    """POST /api/scores/batch: a game server credits many players at once (service token).

    Like ScoreSubmitApi, production traffic takes the async door to the same service.
    """

    @extend_schema(
        operation_id="score_batch",
        summary="Credit many players' actions at once (game servers)",
        description="Needs a service account's token (scope `scores:batch`, issued in the admin or "
        "by `manage.py create_service_token NAME`); a player's token is 403. Each item is checked, "
        "credited and answered like a single POST /api/scores, with its own `status`; a refused "
        "item does not affect the others. Not counted against the score rate limits. Bodies up "
        "to BATCH_MAX_BODY (256 KiB). Served by the lean ASGI door; documented through this twin.",
        request=BatchInput,
        responses={200: BatchOutput, **error_responses(*BATCH_ERRORS)},
        parameters=error_headers(*BATCH_ERRORS),
        examples=[
            OpenApiExample(
                "two players",
                request_only=True,
                value={
                    "actions": [
                        {"user_id": 42, "action_id": ACTION, "action_type": "match_win", "points": 50},
                        {
                            "user_id": 43,
                            "action_id": "0b6a1f8e-3c2d-4e5f-8a9b-1c2d3e4f5a6b",
                            "action_type": "quest",
                            "points": 500,
                        },
                    ]
                },
            ),
            OpenApiExample(
                "per-item answers",
                response_only=True,
                status_codes=["200"],
                value={
                    "success": True,
                    "results": [
                        {
                            "action_id": ACTION,
                            "status": 200,
                            "success": True,
                            "user_id": 42,
                            "new_score": 1580,
                            "rank": 6,
                        },
                        {
                            "action_id": "0b6a1f8e-3c2d-4e5f-8a9b-1c2d3e4f5a6b",
                            "status": 400,
                            "success": False,
                            "error_code": "INVALID_ACTION",
                            "message": "points: must be between 1 and 100 for action type 'quest'",
                            "details": {"points": "must be between 1 and 100 for action type 'quest'"},
                        },
                    ],
                },
            ),
        ],
    )
    def post(self, request):
        if getattr(request.user, "scope", "") != BATCH_SCOPE:
            raise Forbidden("This endpoint takes a service account's token.")
        items = batch_parse(request.data, max_actions=settings.BATCH_MAX_ACTIONS)
        return Response(aio.run(score_submit_batch(items=items)))
