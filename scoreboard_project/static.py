from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.http import Http404

from scoreboard_project.errors import NotFound, error_response


class JsonStaticFilesHandler(ASGIStaticFilesHandler):
    """Serve /static/ from the app directories (admin, Swagger UI from drf-spectacular-sidecar,
    the page's scripts), in `make run` and in the Docker image alike; a missing file is a JSON
    404. Django's handler streams the file without blocking the event loop.

    A reverse proxy in front of a large deployment may serve `collectstatic` output instead.
    """

    def serve(self, request):
        try:
            return super().serve(request)
        except Http404:
            return error_response(NotFound(f"No such file: {request.path}"))
