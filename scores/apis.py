from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tokens import BATCH_SCOPE
from scoreboard_project import aio
from scoreboard_project.clientip import ip_or_none, request_client_address
from scoreboard_project.errors import Forbidden
from scoreboard_project.fields import ErrorOutput
from scores.serializers import BatchInput, BatchOutput, ScoreSubmitInput, ScoreSubmitOutput
from scores.services import score_submit_batch, score_submit_request
from scores.validation import action_parse, batch_parse

ERRORS = {code: OpenApiResponse(ErrorOutput) for code in (400, 401, 403, 409, 413, 429, 503)}


class ScoreSubmitApi(APIView):
    """POST /api/scores for synchronous clients (tests) and the schema; production traffic takes
    the async door in scores/hotpath.py to the same service."""

    @extend_schema(
        request=ScoreSubmitInput,
        responses={200: ScoreSubmitOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "quest",
                request_only=True,
                value={
                    "action_id": "6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11",
                    "action_type": "quest",
                    "points": 10,
                },
            ),
            OpenApiExample(
                "credited",
                response_only=True,
                value={"success": True, "user_id": 42, "new_score": 1530, "rank": 7},
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
        request=BatchInput,
        responses={200: BatchOutput, **ERRORS},
        description="Needs a service account token (scope `scores:batch`, issued in the admin or by "
        "`manage.py create_service_token NAME`). Each item is checked, credited and answered like a "
        "single POST /api/scores; bodies up to BATCH_MAX_BODY (256 KiB).",
    )
    def post(self, request):
        if getattr(request.user, "scope", "") != BATCH_SCOPE:
            raise Forbidden("This endpoint takes a service account's token.")
        items = batch_parse(request.data, max_actions=settings.BATCH_MAX_ACTIONS)
        return Response(aio.run(score_submit_batch(items=items)))
