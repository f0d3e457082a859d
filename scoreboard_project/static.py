from asgiref.sync import sync_to_async
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.http import Http404

from scoreboard_project.errors import NotFound, error_response


class JsonStaticFilesHandler(ASGIStaticFilesHandler):
    """Serve /static/ from the app directories; a missing file is a JSON 404.

    A reverse proxy in front of a large deployment serves `collectstatic` output instead.
    """

    def get_response(self, request):
        try:
            return self.serve(request)
        except Http404:
            return error_response(NotFound(f"No such file: {request.path}"))

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=False)(request)
