"""GET /healthz and GET /readyz for the schema (and any method the lean door does not route).

Production traffic for GET takes the async door (scoreboard_project/hotpath.py); these twins
call the same endpoint functions, so both doors answer alike."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from scoreboard_project import aio
from scoreboard_project.hotpath import HotRequest, healthz_endpoint, readyz_endpoint
from scoreboard_project.openapi import error_headers, error_responses


class HealthOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])


class ReadyOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready"])
    checks = serializers.DictField(
        child=serializers.CharField(),
        help_text="`database` and `redis`: `ok` (or `not configured` for Redis in the embedded default).",
    )


def _answer(endpoint, request) -> HttpResponse:
    response = aio.run(endpoint(HotRequest({"headers": []}, b"")))
    answer = HttpResponse(response.body, status=response.status, content_type="application/json")
    for name, value in response.headers:
        answer[name.decode()] = value.decode()
    return answer


class HealthzApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="healthz",
        tags=["health"],
        summary="Liveness: the process answers",
        description="A constant; it asks no dependency (readiness is /readyz).",
        responses={200: OpenApiResponse(HealthOutput, description="Alive.")},
        examples=[OpenApiExample("alive", response_only=True, status_codes=["200"], value={"status": "ok"})],
        auth=[],
    )
    def get(self, request):
        return _answer(healthz_endpoint, request)


class ReadyzApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="readyz",
        tags=["health"],
        summary="Readiness: the database and Redis answer",
        description="503 SERVICE_UNAVAILABLE names the failing check in `details`; a load "
        "balancer takes the process out of rotation until it answers 200 again.",
        responses={
            200: OpenApiResponse(ReadyOutput, description="Ready."),
            **error_responses(503),
        },
        parameters=error_headers(503),
        examples=[
            OpenApiExample(
                "ready",
                response_only=True,
                status_codes=["200"],
                value={"status": "ready", "checks": {"database": "ok", "redis": "ok"}},
            ),
            OpenApiExample(
                "redis down",
                response_only=True,
                status_codes=["503"],
                value={
                    "success": False,
                    "error_code": "SERVICE_UNAVAILABLE",
                    "message": "A dependency is unavailable.",
                    "retry_after": 5,
                    "details": {"database": "ok", "redis": "unavailable: ConnectionError"},
                },
            ),
        ],
        auth=[],
    )
    def get(self, request):
        return _answer(readyz_endpoint, request)
