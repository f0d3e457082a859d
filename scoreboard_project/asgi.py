"""ASGI entry point: the hot endpoints on a lean async door, HTTP through Django, WebSockets
through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scoreboard_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from leaderboard.hotpath import BOARDS_PREFIX, boards_endpoint, scoreboard_endpoint  # noqa: E402
from leaderboard.routing import websocket_urlpatterns  # noqa: E402
from scoreboard_project.hotpath import BodyLimit, HotPathApp, healthz_endpoint, readyz_endpoint  # noqa: E402
from scoreboard_project.static import JsonStaticFilesHandler  # noqa: E402
from scores.hotpath import score_batch_endpoint, score_submit_endpoint  # noqa: E402

application = HotPathApp(
    ProtocolTypeRouter(
        {
            "http": BodyLimit(JsonStaticFilesHandler(django_asgi_app)),
            # The consumer checks Origin itself, to close with 4403 rather than refuse.
            "websocket": URLRouter(websocket_urlpatterns),
        }
    ),
    routes={
        ("POST", "/api/scores"): (score_submit_endpoint, settings.MAX_REQUEST_BODY),
        ("POST", "/api/scores/batch"): (score_batch_endpoint, settings.BATCH_MAX_BODY),
        ("GET", "/api/scoreboard"): (scoreboard_endpoint, settings.MAX_REQUEST_BODY),
        ("GET", "/healthz"): (healthz_endpoint, settings.MAX_REQUEST_BODY),
        ("GET", "/readyz"): (readyz_endpoint, settings.MAX_REQUEST_BODY),
    },
    prefixes={("GET", BOARDS_PREFIX): (boards_endpoint, settings.MAX_REQUEST_BODY)},
)

# Everything imported so far lives as long as the process: move it out of the collector's
# sight. A full collection otherwise walked ~150,000 objects, a 100 ms pause of every request
# in flight (p99 of POST at c=128 up to 300 ms) and a tenth of a worker's CPU. The youngest
# generation is collected every 10,000 allocations rather than 700: each collection walks
# the state of every request in flight, 6.5 us a request at 700 and 0.5 us at 10,000.
gc.freeze()
gc.set_threshold(10_000, 10, 10)
