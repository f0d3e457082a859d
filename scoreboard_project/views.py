"""JSON answers for paths and failures that no API view handles."""

from django.core.exceptions import RequestDataTooBig
from django.views.decorators.csrf import csrf_exempt

from scoreboard_project.errors import (
    Forbidden,
    InvalidAction,
    NotFound,
    PayloadTooLarge,
    ServerError,
    error_response,
)


# Exempt from CSRF: an unknown path has nothing to protect, and CsrfViewMiddleware would
# otherwise answer a POST to it (from any API client, which sends no CSRF cookie) with 403.
@csrf_exempt
def not_found(request, exception=None, **kwargs):
    return error_response(NotFound(f"No such path: {request.path}"))


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return error_response(PayloadTooLarge())
    return error_response(InvalidAction("Bad request."))


def permission_denied(request, exception=None):
    return error_response(Forbidden())


def server_error(request):
    return error_response(ServerError())
