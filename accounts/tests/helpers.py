"""Assertions and token builders shared by the accounts tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
from django.conf import settings

from conftest import new_action

REGISTER_URL = "/api/auth/register"
TOKEN_URL = "/api/auth/token"
REFRESH_URL = "/api/auth/token/refresh"
LOGOUT_URL = "/api/auth/logout"
SCORES_URL = "/api/scores"
PASSWORD = "correct-Horse-battery-9"  # the password make_user gives every user


def assert_error(response, *, status: int, code: str, details=(), retry_after: bool = False) -> dict:
    """Check the error shape of API.md section 5, exactly: no key more, no key less."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    expected = {"success", "error_code", "message"}
    if details:
        expected.add("details")
    if retry_after:
        expected.add("retry_after")
    assert set(body) == expected, body
    assert body["success"] is False
    assert body["error_code"] == code
    assert isinstance(body["message"], str) and body["message"]
    if details:
        assert set(body["details"]) == set(details), body["details"]
        assert all(isinstance(text, str) and text for text in body["details"].values())
    if retry_after:
        assert type(body["retry_after"]) is int and body["retry_after"] >= 1
        assert response["Retry-After"] == str(body["retry_after"])
    else:
        assert "Retry-After" not in response
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    return body


def assert_unauthorized(response) -> dict:
    return assert_error(response, status=401, code="UNAUTHORIZED")


def post_score(api, *, authorization: str | None):
    """POST one valid quest action; the protected endpoint that probes a token."""
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    return api.post(SCORES_URL, new_action(), format="json", **extra)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def assert_score_accepted(response, *, user_id: int) -> None:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["user_id"] == user_id


def claims_of(token: str) -> dict:
    """Decode a token the server issued, checking signature and algorithm."""
    return jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])


def sign(claims: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, settings.JWT_SECRET if key is None else key, algorithm=algorithm)


def _segment(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_built(claims: dict, *, header: dict, hmac_sha256: bool) -> str:
    """A JWT built without PyJWT: any header; HMAC-SHA256 over it with JWT_SECRET, or no signature."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    if not hmac_sha256:
        return signing_input + "."
    digest = hmac.new(settings.JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
