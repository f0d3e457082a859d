"""The application's error family and its one translation into the API's JSON shape."""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client can act on: HTTP status, stable code, message, optional wait."""

    status = 400
    code = "INVALID_ACTION"
    default_message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict | None = None,
        retry_after: float | None = None,
    ):
        self.message = message or self.default_message
        self.details = details
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))
        self.extra_headers: dict[str, str] = {}
        super().__init__(self.message)

    def body(self) -> dict:
        body: dict = {"success": False, "error_code": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        if self.details:
            body["details"] = self.details
        return body

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        headers.update(self.extra_headers)
        return headers


class InvalidAction(ApiError):
    status, code, default_message = 400, "INVALID_ACTION", "The request is invalid."


class Unauthorized(ApiError):
    status, code, default_message = 401, "UNAUTHORIZED", "Authentication is required."


class Forbidden(ApiError):
    status, code, default_message = 403, "FORBIDDEN", "You are not allowed to do this."


class AccountSuspended(ApiError):
    status, code, default_message = 403, "ACCOUNT_SUSPENDED", "This account is suspended."


class NotFound(ApiError):
    status, code, default_message = 404, "NOT_FOUND", "Not found."


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "Method not allowed."


class DuplicateAction(ApiError):
    status, code = 409, "DUPLICATE_ACTION"
    default_message = "This action_id was already used for a different action."


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The body is larger than 16 KiB."


class RateLimited(ApiError):
    status, code, default_message = 429, "RATE_LIMIT_EXCEEDED", "Too many requests."


class ServiceUnavailable(ApiError):
    status, code = 503, "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable; nothing was written."


class ServerError(ApiError):
    status, code, default_message = 500, "INTERNAL_ERROR", "An unexpected error occurred."


# SQLSTATE of a lost or refused connection: class 08, and the server shutting down or starting.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unavailable(exc: BaseException | None) -> bool:
    """Did this error come from an unreachable database (not from a bad query)?

    psycopg's connection errors and pool timeouts, and Django's wrappers of them; a
    serialisation failure or a constraint violation is not one.
    """
    import psycopg
    from django.db import utils as db_utils
    from psycopg_pool import PoolClosed, PoolTimeout

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (PoolTimeout, PoolClosed)):
            return True
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
            state = exc.sqlstate
            if state is None or state.startswith(_UNAVAILABLE_STATES):
                return True
        if isinstance(exc, (psycopg.InterfaceError, db_utils.InterfaceError)):
            return True
        if isinstance(exc, db_utils.OperationalError) and exc.__cause__ is None:
            # Django raises its own OperationalError without a driver error only for a
            # connection it could not make ("the connection is closed" and the like).
            return "connection" in str(exc).lower()
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def database_unavailable_error() -> ServiceUnavailable:
    from django.conf import settings

    return ServiceUnavailable(
        "The database is unreachable; nothing was written. Try again shortly.",
        retry_after=settings.DB_RETRY_AFTER,
    )


def error_response(error: ApiError) -> JsonResponse:
    return JsonResponse(error.body(), status=error.status, headers=error.headers())


def _flatten(detail) -> dict:
    """Turn DRF's nested ValidationError detail into {field: "message"}."""
    if isinstance(detail, dict):
        return {
            str(key): "; ".join(str(item) for item in value) if isinstance(value, list) else str(value)
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": "; ".join(str(item) for item in detail)}
    return {"non_field_errors": str(detail)}


def api_error_from(exc: Exception) -> ApiError | None:
    """Map DRF's and Django's exceptions onto the API's error family."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, drf_exceptions.ParseError):
        return InvalidAction("The body is not valid JSON.")
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return InvalidAction("The body must be JSON (Content-Type: application/json).")
    if isinstance(exc, drf_exceptions.ValidationError):
        return InvalidAction("The request is invalid.", details=_flatten(exc.detail))
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return Unauthorized(str(exc.detail) if exc.detail else None)
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return Forbidden()
    if isinstance(exc, drf_exceptions.NotFound):
        return NotFound()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed()
    if isinstance(exc, drf_exceptions.Throttled):
        return RateLimited(retry_after=exc.wait or 1)
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return InvalidAction("Responses are JSON only.")
    if isinstance(exc, drf_exceptions.APIException):
        return ApiError(str(exc.detail))
    if isinstance(exc, Http404):
        return NotFound()
    if database_unavailable(exc):
        from scoreboard_project import aio

        logger.error("database unreachable: %s: %s", type(exc).__name__, exc)
        aio.pg_pool_check_soon_threadsafe()
        return database_unavailable_error()
    if isinstance(exc, PermissionDenied):
        return Forbidden()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):
        return InvalidAction("The request is invalid.")
    return None


def api_exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: every error leaves in the JSON shape of API.md section 5."""
    error = api_error_from(exc)
    if error is None:
        return None  # JsonErrorMiddleware logs it and answers a JSON 500.
    return error_response(error)
