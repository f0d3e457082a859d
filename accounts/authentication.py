"""Bearer-token authentication without a database query on the common path."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.sessions import session_is_live, session_is_live_async
from accounts.tokens import access_token_verify
from scoreboard_project.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The caller as the token describes them; no row is loaded."""

    id: int
    sid: str
    scope: str = ""
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self) -> int:
        return self.id


def bearer_token(header: bytes) -> str:
    """Extract the token from an Authorization header, or raise Unauthorized."""
    parts = header.split()
    if not parts or parts[0].lower() != b"bearer":
        raise Unauthorized("A Bearer token is required.")
    if len(parts) != 2:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise Unauthorized("The token is malformed.") from None


def user_from_bearer(header: bytes) -> TokenUser:
    """Verify the token in process, then the session in Redis (database on a miss)."""
    claims = access_token_verify(bearer_token(header))
    if not session_is_live(sid=claims.sid, user_id=claims.user_id):
        raise Unauthorized("The session has ended.")
    return TokenUser(id=claims.user_id, sid=claims.sid, scope=claims.scope)


async def user_from_bearer_async(header: bytes) -> TokenUser:
    """`user_from_bearer` for the async hot path: no database query on a cached session."""
    if not header:
        raise Unauthorized("A Bearer token is required.")
    claims = access_token_verify(bearer_token(header))
    if not await session_is_live_async(sid=claims.sid, user_id=claims.user_id):
        raise Unauthorized("The session has ended.")
    return TokenUser(id=claims.user_id, sid=claims.sid, scope=claims.scope)


class SessionJWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        return user_from_bearer(header), None

    def authenticate_header(self, request):
        return "Bearer"
