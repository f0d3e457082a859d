"""Call the production ASGI application in process: the tests' client and the fraud scenario's.

The request goes through exactly what a server would hand the application (hot door, Django,
middleware), without a socket.
"""

from __future__ import annotations

import asyncio
import json


class AsgiResponse:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status
        self.headers = {name.decode().lower(): value.decode() for name, value in headers}
        self.content = body

    def json(self):
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.headers


async def asgi_call(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> AsgiResponse:
    """Send one HTTP request through the production ASGI application."""
    from scoreboard_project.asgi import application

    header_list = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
    header_list += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.partition("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": header_list,
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    await application(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    content = b"".join(
        message.get("body", b"") for message in sent if message["type"] == "http.response.body"
    )
    return AsgiResponse(start["status"], start["headers"], content)
