"""Account endpoints of API.md section 4; they translate, the services decide."""

from django.conf import settings
from django_ratelimit.core import get_usage
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.serializers import (
    CredentialsInput,
    RefreshInput,
    RegisterInput,
    RegisterOutput,
    TicketOutput,
    TokenPairOutput,
)
from accounts.tickets import ws_ticket_issue
from scoreboard_project.clientip import request_client_address
from scoreboard_project.errors import RateLimited
from scoreboard_project.openapi import error_headers, error_responses

CREDENTIALS = OpenApiExample(
    "credentials", request_only=True, value={"username": "ada", "password": "correct-Horse-battery-9"}
)
TOKEN_PAIR = OpenApiExample(
    "token pair",
    response_only=True,
    status_codes=["200"],
    value={
        "access": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjo0Miwic2lkIjoiLi4uIn0.c2lnbmF0dXJl",
        "refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl",
        "token_type": "Bearer",
        "expires_in": 3600,
    },
)
REGISTER_ERRORS = (400, 403, 413, 429, 503)
TOKEN_ERRORS = (400, 401, 403, 413, 429, 503)
REFRESH_ERRORS = (400, 401, 413, 503)
LOGOUT_ERRORS = (401, 413, 503)
TICKET_ERRORS = (401, 413, 429, 503)


def client_ip(request) -> str:
    return request_client_address(request)


def _limit(request, *, group: str, value: str, rate: str) -> None:
    usage = get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True)
    if usage and usage["should_limit"]:
        raise RateLimited("Too many attempts; wait before trying again.", retry_after=usage["time_left"])


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_register",
        summary="Create a player account",
        description="Usernames: 3-50 characters of letters, digits, `_ . -`, unique regardless of "
        "case; passwords must pass Django's validators (length, similarity, common, numeric). "
        "403 when the operator closed registration (REGISTRATION_OPEN=false); rate-limited per "
        "client address (REGISTER_RATE_PER_IP).",
        request=RegisterInput,
        responses={201: RegisterOutput, **error_responses(*REGISTER_ERRORS)},
        parameters=error_headers(*REGISTER_ERRORS),
        examples=[
            CREDENTIALS,
            OpenApiExample(
                "created", response_only=True, status_codes=["201"], value={"user_id": 42, "username": "ada"}
            ),
        ],
        auth=[],
    )
    def post(self, request):
        _limit(request, group="register:ip", value=client_ip(request), rate=settings.REGISTER_RATE_PER_IP)
        data = CredentialsInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response({"user_id": user.id, "username": user.username}, status=201)


class TokenObtainApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token",
        summary="Log in: open a session, get an access and a refresh token",
        description="401 for a wrong username or password (with `WWW-Authenticate: Bearer`), 403 "
        "for an inactive account; rate-limited per client address and per username "
        "(LOGIN_RATE_PER_IP, LOGIN_RATE_PER_USERNAME: 429 with `retry_after`).",
        request=CredentialsInput,
        responses={200: TokenPairOutput, **error_responses(*TOKEN_ERRORS)},
        parameters=error_headers(*TOKEN_ERRORS),
        examples=[CREDENTIALS, TOKEN_PAIR],
        auth=[],
    )
    def post(self, request):
        data = CredentialsInput(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        _limit(request, group="login:ip", value=client_ip(request), rate=settings.LOGIN_RATE_PER_IP)
        _limit(request, group="login:username", value=username.lower(), rate=settings.LOGIN_RATE_PER_USERNAME)
        user = services.user_authenticate(**data.validated_data)
        return Response(services.session_open(user=user))


class TokenRefreshApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token_refresh",
        summary="Rotate a refresh token: a new pair, the old refresh token is dead",
        description="Presenting a refresh token that was already rotated is treated as theft: the "
        "whole session is revoked (401).",
        request=RefreshInput,
        responses={200: TokenPairOutput, **error_responses(*REFRESH_ERRORS)},
        parameters=error_headers(*REFRESH_ERRORS),
        examples=[
            OpenApiExample(
                "refresh token",
                request_only=True,
                value={
                    "refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"
                },
            ),
            TOKEN_PAIR,
        ],
        auth=[],
    )
    def post(self, request):
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.session_refresh(raw_refresh=data.validated_data["refresh"]))


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout",
        summary="End the session: every token of it is dead at once, its sockets closed",
        request=None,
        responses={
            204: OpenApiResponse(description="Logged out; no body."),
            **error_responses(*LOGOUT_ERRORS),
        },
        parameters=error_headers(*LOGOUT_ERRORS),
    )
    def post(self, request):
        services.session_revoke(sid=request.user.sid)
        return Response(status=204)


class WsTicketApi(APIView):
    """A single-use ticket for /ws/scoreboard (browsers cannot send headers on a WebSocket).

    With a Bearer token the ticket opens that player's live feed (their SCORE_UPDATE too);
    without one it opens the board only (read-only), rate-limited per client address.
    """

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_ws_ticket",
        summary="A single-use ticket for WebSocket /ws/scoreboard (valid 30 seconds)",
        description="Connect with `/ws/scoreboard?ticket=<ticket>`. With a Bearer token the ticket "
        "opens that player's feed (their SCORE_UPDATE too); without one, the board only, "
        "rate-limited per client address (WS_TICKET_RATE_PER_IP).",
        request=None,
        responses={200: TicketOutput, **error_responses(*TICKET_ERRORS)},
        parameters=error_headers(*TICKET_ERRORS),
        examples=[
            OpenApiExample(
                "ticket",
                response_only=True,
                status_codes=["200"],
                value={"ticket": "4kq2Zr8xW1pLmN0vB7cY3tHs9dFa6JgE", "expires_in": 30},
            )
        ],
    )
    def post(self, request):
        user = request.user
        if user is None:
            _limit(
                request, group="ws-ticket:ip", value=client_ip(request), rate=settings.WS_TICKET_RATE_PER_IP
            )
            ticket = ws_ticket_issue(user_id=None, sid=None)
        else:
            ticket = ws_ticket_issue(user_id=user.id, sid=user.sid)
        return Response({"ticket": ticket, "expires_in": settings.WS_TICKET_SECONDS})
