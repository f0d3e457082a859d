"""Account endpoints of API.md section 4; they translate, the services decide."""

from django.conf import settings
from django_ratelimit.core import get_usage
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.serializers import CredentialsInput, RefreshInput, RegisterOutput, TicketOutput, TokenPairOutput
from accounts.tickets import ws_ticket_issue
from scoreboard_project.clientip import request_client_address
from scoreboard_project.errors import RateLimited
from scoreboard_project.fields import ErrorOutput

ERRORS = {code: OpenApiResponse(ErrorOutput) for code in (400, 401, 403, 413, 429)}


def client_ip(request) -> str:
    return request_client_address(request)


def _limit(request, *, group: str, value: str, rate: str) -> None:
    usage = get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True)
    if usage and usage["should_limit"]:
        raise RateLimited("Too many attempts; wait before trying again.", retry_after=usage["time_left"])


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=CredentialsInput, responses={201: RegisterOutput, **ERRORS}, auth=[])
    def post(self, request):
        _limit(request, group="register:ip", value=client_ip(request), rate=settings.REGISTER_RATE_PER_IP)
        data = CredentialsInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response({"user_id": user.id, "username": user.username}, status=201)


class TokenObtainApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=CredentialsInput, responses={200: TokenPairOutput, **ERRORS}, auth=[])
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

    @extend_schema(request=RefreshInput, responses={200: TokenPairOutput, **ERRORS}, auth=[])
    def post(self, request):
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.session_refresh(raw_refresh=data.validated_data["refresh"]))


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, 401: OpenApiResponse(ErrorOutput)})
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
        request=None,
        responses={200: TicketOutput, 401: OpenApiResponse(ErrorOutput), 429: OpenApiResponse(ErrorOutput)},
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
