"""JWTs: HS256, signed with JWT_SECRET, carrying `user_id` and the session id `sid`."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from scoreboard_project.errors import Unauthorized

BATCH_SCOPE = "scores:batch"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    sid: str
    scope: str = ""


def token_pair_issue(*, user_id: int, sid: str) -> tuple[dict, str]:
    """Return the login response body and the refresh token's jti."""
    refresh = RefreshToken()
    refresh["user_id"] = user_id
    refresh["sid"] = sid
    access = refresh.access_token
    body = {
        "access": str(access),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": settings.JWT_EXPIRY,
    }
    return body, refresh["jti"]


def service_token_issue(*, user_id: int, sid: str, lifetime: timedelta) -> str:
    """An access token for a service account: long-lived, scoped, no refresh token."""
    token = AccessToken()
    token.set_exp(lifetime=lifetime)
    token["user_id"] = user_id
    token["sid"] = sid
    token["scope"] = BATCH_SCOPE
    return str(token)


def _claims(token) -> AccessClaims:
    user_id = token.payload.get("user_id")
    sid = token.payload.get("sid")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(sid, str):
        raise Unauthorized("The token is missing required claims.")
    try:
        uuid.UUID(sid)
    except ValueError:
        raise Unauthorized("The token is missing required claims.") from None
    scope = token.payload.get("scope", "")
    return AccessClaims(user_id=user_id, sid=sid, scope=scope if isinstance(scope, str) else "")


def access_token_verify(raw: str) -> AccessClaims:
    """Check signature, algorithm, expiry, type and claims in process; no I/O.

    A token already verified by this process is recognised without a second HMAC, its
    expiry checked again; sessions are checked separately, so revocation is unaffected.
    """
    claims, expires_at = _verified(raw)
    if expires_at <= time.time():
        raise Unauthorized("The token is invalid or expired.")
    return claims


@lru_cache(maxsize=16384)
def _verified(raw: str) -> tuple[AccessClaims, float]:
    try:
        token = AccessToken(raw)
    except TokenError:
        raise Unauthorized("The token is invalid or expired.") from None
    return _claims(token), float(token["exp"])


def refresh_token_verify(raw: str) -> tuple[AccessClaims, str]:
    """Check a refresh token in process; return its claims and jti."""
    if not isinstance(raw, str) or not raw:
        raise Unauthorized("A refresh token is required.")
    try:
        token = RefreshToken(raw)
    except TokenError:
        raise Unauthorized("The refresh token is invalid or expired.") from None
    return _claims(token), token["jti"]
