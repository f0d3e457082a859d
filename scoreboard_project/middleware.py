import logging

from django.core.exceptions import RequestDataTooBig

from scoreboard_project.errors import PayloadTooLarge, ServerError, error_response

logger = logging.getLogger("scoreboard.errors")


class JsonErrorMiddleware:
    """Refuse oversized bodies early and turn any unhandled exception into a JSON 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > request_body_limit():
            return error_response(PayloadTooLarge())
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return error_response(PayloadTooLarge())
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ServerError())


def request_body_limit() -> int:
    from django.conf import settings

    return settings.MAX_REQUEST_BODY
