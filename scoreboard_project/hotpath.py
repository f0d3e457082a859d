"""The lean ASGI door for the hot endpoints, in front of Django's handler.

POST /api/scores, POST /api/scores/batch and GET /api/scoreboard are answered here, on the
server's event loop, with no thread hop per request: Django's ASGI handler would make two
(the request_started receivers and response.close()). They call the same services as the
DRF views, which keep serving every other method and document the endpoints in the schema.
Everything else goes to Django untouched.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache

from django.http.request import split_domain_port, validate_host

from scoreboard_project import aio, metrics
from scoreboard_project.clientip import client_address, ip_or_none
from scoreboard_project.errors import (
    ApiError,
    InvalidAction,
    PayloadTooLarge,
    ServerError,
    database_unavailable,
    database_unavailable_error,
)
from scoreboard_project.hotsettings import hot
from scoreboard_project.logs import request_id_start

logger = logging.getLogger("scoreboard.errors")

JSON_HEADERS = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff")]
# Probes (compose healthchecks, orchestrators, load balancers) ask by address, not by the
# public host name in ALLOWED_HOSTS: the health endpoints answer whatever the Host header.
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz"})


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


@dataclass(slots=True)
class HotRequest:
    scope: dict
    body: bytes

    def header(self, name: bytes) -> bytes:
        for key, value in self.scope["headers"]:
            if key == name:
                return value
        return b""

    def client_ip(self) -> str | None:
        """The client's address: the socket's, or X-Forwarded-For's behind a trusted proxy."""
        peer = self.scope.get("client")
        if not peer:
            return None
        forwarded = self.header(b"x-forwarded-for")
        return ip_or_none(client_address(peer[0], forwarded.decode("latin-1") if forwarded else None))

    def json(self) -> object:
        """The body as JSON, strictly: JSON content type, UTF-8, no NaN or Infinity."""
        content_type = self.header(b"content-type").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            raise InvalidAction("The body must be JSON (Content-Type: application/json).")
        if not self.body:
            return {}
        try:
            return _decode(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidAction("The body is not valid JSON.") from None


@dataclass(frozen=True, slots=True)
class HotResponse:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[HotRequest], Awaitable[HotResponse]]


@lru_cache(maxsize=256)
def host_allowed(host: bytes, allowed_hosts: tuple[str, ...]) -> bool:
    """Django's Host validation, remembered: clients send a handful of Host values, and
    the check (a lazily compiled regex behind a proxy object) costs 2 % of a request."""
    return validate_host(split_domain_port(host.decode("latin-1"))[0], allowed_hosts)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# One decoder and one encoder for every request: json.loads and json.dumps given an argument
# build a new one on each call.
_decode = json.JSONDecoder(parse_constant=_reject_constant).decode
_encode = json.JSONEncoder(separators=(",", ":")).encode


def json_bytes(body: dict) -> bytes:
    return _encode(body).encode()


def json_response(status: int, body: dict, headers: tuple[tuple[bytes, bytes], ...] = ()) -> HotResponse:
    return HotResponse(status, json_bytes(body), headers)


def error_response(error: ApiError) -> HotResponse:
    headers = tuple((name.lower().encode(), value.encode()) for name, value in error.headers().items())
    return json_response(error.status, error.body(), headers)


class HotPathApp:
    """Route the hot endpoints to their handlers; pass everything else to `app`."""

    def __init__(
        self,
        app,
        routes: dict[tuple[str, str], tuple[Handler, int]],
        prefixes: dict[tuple[str, str], tuple[Handler, int]] | None = None,
    ):
        self.app = app
        self.routes = routes
        # Paths with parameters: (method, prefix) takes the prefix and every path below it.
        self.prefixes = prefixes or {}
        # The same routes as the request line's bytes, for scoreboard_project.protocol.
        self.raw_routes = {
            (method.encode(), path.encode()): route for (method, path), route in routes.items()
        }

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            route = self.routes.get((scope["method"], scope["path"])) or self.prefix_route(scope)
            if route is not None:
                return await self.serve(route, scope, receive, send)
        elif scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        return await self.app(scope, receive, send)

    def prefix_route(self, scope) -> tuple[Handler, int] | None:
        for (method, prefix), route in self.prefixes.items():
            path = scope["path"]
            if scope["method"] == method and (path == prefix or path.startswith(prefix + "/")):
                return route
        return None

    async def serve(self, route: tuple[Handler, int], scope, receive, send) -> None:
        handler, body_limit = route
        started = time.perf_counter()
        current = request_id_start(HotRequest(scope, b"").header(b"x-request-id"))
        try:
            response = await self.handle(handler, body_limit, scope, receive)
            await respond(send, response, ((b"x-request-id", current.value.encode()),))
            metrics.hot_response_observed(scope, response, started)
        except ClientGone:
            return
        finally:
            current.finish()

    async def handle(
        self, handler: Handler, body_limit: int, scope, receive=None, body: bytes | None = None
    ) -> HotResponse:
        """The answer to one request: its body read from `receive` (or given whole, as
        `body`, by the HTTP protocol of `scoreboard_project.protocol`), every error turned
        into its JSON response."""
        try:
            request = HotRequest(scope, b"")
            if scope["path"] not in ANY_HOST_PATHS and not host_allowed(
                request.header(b"host"), tuple(hot.ALLOWED_HOSTS)
            ):
                raise InvalidAction("The Host header is not allowed.")
            request.body = body if body is not None else await read_body(request, receive, body_limit)
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except ClientGone:
            raise
        except Exception as error:
            if database_unavailable(error):
                logger.error("database unreachable on %s %s: %s", scope["method"], scope["path"], error)
                aio.pg_pool_check_soon()
                return error_response(database_unavailable_error())
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            return error_response(ServerError())

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await aio.close_loop_resources()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def respond(send, response: HotResponse, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    headers = [
        *JSON_HEADERS,
        (b"content-length", str(len(response.body)).encode()),
        *response.headers,
        *extra,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class BodyLimit:
    """In front of Django: read the body first and refuse it past the path's limit, declared
    or streamed (a chunked body has no Content-Length to check), with the JSON 413."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from scoreboard_project.middleware import request_body_limit

        try:
            body = await read_body(HotRequest(scope, b""), receive, request_body_limit(scope["path"]))
        except ApiError as error:
            return await respond(send, error_response(error))
        except ClientGone:
            return
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def read_body(request: HotRequest, receive, limit: int) -> bytes:
    try:
        declared = int(request.header(b"content-length") or 0)
    except ValueError:
        raise InvalidAction("Bad Content-Length.") from None
    if declared > limit:
        raise PayloadTooLarge()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


HEALTHY = HotResponse(200, b'{"status":"ok"}')


async def healthz_endpoint(request: HotRequest) -> HotResponse:
    """GET /healthz: the process answers (a constant; readiness is /readyz)."""
    return HEALTHY


async def readyz_endpoint(request: HotRequest) -> HotResponse:
    """GET /readyz: the database and (when configured) Redis answer; 503 otherwise."""
    import asyncio

    checks: dict[str, str] = {}

    async def database() -> None:
        from django.db import connection

        def ping() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")

        await aio.db_call(ping)()

    async def cache() -> None:
        client = aio.async_redis()
        if client is not None:
            await client.ping()

    for name, check in (("database", database), ("redis", cache)):
        try:
            await asyncio.wait_for(check(), timeout=2)
            checks[name] = "ok"
        except Exception as error:  # any failure means: not ready
            checks[name] = f"unavailable: {type(error).__name__}"
    if aio.async_redis() is None:
        checks["redis"] = "not configured"
    ready = all(value in ("ok", "not configured") for value in checks.values())
    if ready:
        return json_response(200, {"status": "ready", "checks": checks})
    body = {
        "success": False,
        "error_code": "SERVICE_UNAVAILABLE",
        "message": "A dependency is unavailable.",
        "retry_after": 5,
        "details": checks,
    }
    return json_response(503, body, ((b"retry-after", b"5"),))
