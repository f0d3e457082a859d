"""uvicorn's httptools protocol, with the hot endpoints answered in place.

`uvicorn --http scoreboard_project.protocol:HotHttpToolsProtocol` (the production command):
a plain request to one of `HotPathApp`'s routes (HTTP/1.1, a Content-Length within the
route's limit, nothing in flight before it on the connection) goes straight from the parser
to `HotPathApp.handle`, the same handler and error mapping the ASGI door uses, and its
response leaves in one write. Everything else (other paths, WebSockets, chunked or oversized
bodies, pipelined requests behind one in flight, `Expect: 100-continue`, HTTP/1.0) takes
uvicorn's own road through the ASGI application, unchanged.

What it saves per request: uvicorn's request cycle (an event, the ASGI message dicts, a
receive and two sends that check every header against two regular expressions) and the second
write: uvicorn writes the headers, then the body, and uvloop sends each write at once, so the
client wakes up twice. Measured in "Hot path" of the README.
"""

from __future__ import annotations

import logging
import time

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from scoreboard_project import metrics
from scoreboard_project.errors import ServerError
from scoreboard_project.hotpath import JSON_HEADERS, HotPathApp, HotRequest, HotResponse, error_response
from scoreboard_project.logs import request_id_start

logger = logging.getLogger("scoreboard.errors")

CONNECTION_CLOSE = b"connection: close\r\n"


def header_lines(headers) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


# The headers every answer of the ASGI door carries (hotpath.JSON_HEADERS), as bytes.
JSON_HEAD = header_lines(JSON_HEADERS)


class _NoEvent:
    def set(self) -> None:
        pass


class HotCycle:
    """What uvicorn's protocol reads and writes on `self.cycle`, for a hot request in flight:
    a request arriving behind it is queued, a lost connection marks it, a shutdown ends the
    connection after it."""

    __slots__ = ("keep_alive", "disconnected", "response_complete")
    message_event = _NoEvent()

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.disconnected = False
        self.response_complete = False


class HotExchange:
    """A hot request being read: its route, scope, body so far and cycle."""

    __slots__ = ("route", "scope", "body", "cycle")

    def __init__(self, route, scope: dict, cycle: HotCycle) -> None:
        self.route = route
        self.scope = scope
        self.body = bytearray()
        self.cycle = cycle


# The server's date and name headers as bytes, made again when the server renews its list
# (once a second).
_defaults: tuple[object, bytes] = (None, b"")


def default_head(headers: list[tuple[bytes, bytes]]) -> bytes:
    global _defaults
    source, head = _defaults
    if source is not headers:
        head = header_lines(headers)
        _defaults = (headers, head)
    return head


def response_bytes(
    response: HotResponse, defaults: list[tuple[bytes, bytes]], request_id: bytes, keep_alive: bool
) -> bytes:
    """The whole response, as the ASGI door sends it: the server's headers, the JSON ones,
    the length, the response's own headers, the request id."""
    body = response.body
    parts = [STATUS_LINE[response.status], default_head(defaults), JSON_HEAD]
    parts.append(b"content-length: %d\r\n" % len(body))
    if response.headers:
        parts.append(header_lines(response.headers))
    parts.append(b"x-request-id: " + request_id + b"\r\n")
    if not keep_alive:
        parts.append(CONNECTION_CLOSE)
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


class HotHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        # Only the application itself: a middleware uvicorn wraps around it (proxy headers,
        # the trace logger) must see every request, and so does an access log.
        served = isinstance(app, HotPathApp) and not self.root_path and not self.access_log
        self.hot_app: HotPathApp | None = app if served else None
        self.hot_routes = app.raw_routes if served else {}
        self.reading: HotExchange | None = None

    def on_message_begin(self) -> None:
        self.reading = None
        super().on_message_begin()

    def _hot_route(self):
        if not self.hot_routes or self.expect_100_continue or self.limit_concurrency is not None:
            return None
        route = self.hot_routes.get((self.parser.get_method(), self.url))
        if route is None or (self.cycle is not None and not self.cycle.response_complete):
            return None  # not hot, or behind a request in flight: uvicorn queues it
        if self.parser.should_upgrade() or self.parser.get_http_version() != "1.1":
            return None
        declared = 0
        for name, value in self.headers:
            if name == b"content-length":
                if not value.isdigit():
                    return None
                declared = int(value)
            elif name == b"transfer-encoding":
                return None
        # Past the limit: the ASGI door answers 413 without reading the body.
        return route if declared <= route[1] else None

    def on_headers_complete(self) -> None:
        route = self._hot_route()
        if route is None:
            return super().on_headers_complete()
        scope = self.scope
        scope["method"] = self.parser.get_method().decode("ascii")
        scope["path"] = self.url.decode("ascii")
        scope["raw_path"] = self.url
        scope["query_string"] = b""
        self.cycle = cycle = HotCycle(self.parser.should_keep_alive())
        self.reading = HotExchange(route, scope, cycle)

    def on_body(self, body: bytes) -> None:
        if self.reading is None:
            return super().on_body(body)
        self.reading.body += body  # at most the declared length, within the route's limit

    def on_message_complete(self) -> None:
        exchange = self.reading
        if exchange is None:
            return super().on_message_complete()
        self.reading = None
        task = self.loop.create_task(self.answer(exchange))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def answer(self, exchange: HotExchange) -> None:
        scope, cycle = exchange.scope, exchange.cycle
        handler, limit = exchange.route
        started = time.perf_counter()
        current = request_id_start(HotRequest(scope, b"").header(b"x-request-id"))
        try:
            response = await self.hot_app.handle(handler, limit, scope, body=bytes(exchange.body))
            if not cycle.disconnected and not self.transport.is_closing():
                if self.flow.write_paused:
                    await self.flow.drain()
                self.transport.write(
                    response_bytes(
                        response, self.server_state.default_headers, current.value.encode(), cycle.keep_alive
                    )
                )
            metrics.hot_response_observed(scope, response, started)
        except Exception:  # a fault here, not in the handler (which answers its own errors)
            logger.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            if not self.transport.is_closing():
                self.transport.write(
                    response_bytes(error_response(ServerError()), [], current.value.encode(), False)
                )
            cycle.keep_alive = False
        finally:
            current.finish()
            cycle.response_complete = True
            if not cycle.keep_alive:
                self.transport.close()
            self.on_response_complete()
