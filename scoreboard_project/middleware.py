import logging
import time

from django.conf import settings

from scoreboard_project.errors import (
    ApiError,
    Forbidden,
    InvalidAction,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServerError,
    api_error_from,
    database_unavailable,
    database_unavailable_error,
    error_response,
)

logger = logging.getLogger("scoreboard.errors")


class RequestObservationMiddleware:
    """The outermost middleware: a request id for every line the request logs (echoed in
    X-Request-ID), and the request's metrics by route template."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from scoreboard_project import metrics
        from scoreboard_project.clientip import request_client_address
        from scoreboard_project.logs import REQUEST_ID_HEADER, request_id_start

        started = time.perf_counter()
        current = request_id_start(request.headers.get(REQUEST_ID_HEADER))
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = current.value
            match = getattr(request, "resolver_match", None)
            route = match.route if match is not None else ""
            metrics.response_observed(
                request.method,
                "/" + route if route and route != "^" else "unmatched",
                response.status_code,
                started,
                body=response.content if response.status_code >= 400 and not response.streaming else b"",
                replayed=response.get("Idempotent-Replayed") == "true",
                client_ip=lambda: request_client_address(request),
            )
            return response
        finally:
            current.finish()


class JsonErrorMiddleware:
    """Refuse oversized bodies early and turn any unhandled exception into a JSON 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > request_body_limit(request.path):
            return error_response(PayloadTooLarge())
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            # A framework page (an empty 405, a CSRF 403, ...) becomes the API's JSON shape.
            return error_response(error_for_status(response.status_code))
        return response

    def process_exception(self, request, exception):
        if database_unavailable(exception):
            logger.error("database unreachable on %s %s: %s", request.method, request.path, exception)
            return error_response(database_unavailable_error())
        error = api_error_from(exception)  # Django's own: 403, 404, 413, 400
        if error is not None:
            return error_response(error)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ServerError())


def request_body_limit(path: str) -> int:
    """16 KiB for every body (API.md section 5) but a game server's batch."""
    return settings.BATCH_MAX_BODY if path == "/api/scores/batch" else settings.MAX_REQUEST_BODY


def error_for_status(status: int) -> ApiError:
    known = {400: InvalidAction, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}
    if status in known:
        return known[status]()
    error = ServerError() if status >= 500 else InvalidAction()
    error.status = status
    return error
