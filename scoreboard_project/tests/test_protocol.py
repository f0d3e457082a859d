"""The production HTTP protocol (`scoreboard_project.protocol`): the hot endpoints answered
in place, everything else through uvicorn's own road, over real sockets to a real server."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from scoreboard_project import protocol
from scoreboard_project.tests.faults import free_port

STANDARD = "httptools"
PRODUCTION = "scoreboard_project.protocol:HotHttpToolsProtocol"


class Server:
    """uvicorn in a thread of this process, as the production command runs it."""

    def __init__(self, http: str, **options) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            "scoreboard_project.asgi:application",
            host="127.0.0.1",
            port=self.port,
            loop="uvloop",
            http=http,
            ws="websockets-sansio",
            access_log=False,
            proxy_headers=options.pop("proxy_headers", False),
            log_level="warning",
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def connect(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


class Reader:
    """HTTP/1.1 responses read off a socket, one at a time."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.connection.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"the connection closed before a response: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, value = line.split(":", 1)
            assert name.lower() not in headers, f"{name} twice"
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "the connection closed inside a body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        return not self.buffer and not self._fill()


def request(method: str, path: str, body: bytes = b"", *headers: str, version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *headers]
    if body and not any(
        header.lower().startswith(("content-length", "transfer-encoding")) for header in headers
    ):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def answered(monkeypatch):
    """The paths this process's protocol answered in place, in order."""
    paths: list[str] = []
    original = protocol.HotHttpToolsProtocol.answer

    async def answer(self, exchange):
        paths.append(exchange.scope["path"])
        return await original(self, exchange)

    monkeypatch.setattr(protocol.HotHttpToolsProtocol, "answer", answer)
    return paths


def exchange(server: Server, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    with server.connect() as connection:
        connection.sendall(b"".join(requests))
        reader = Reader(connection)
        return [reader.response() for _ in requests]


def comparable(headers: dict[str, str]) -> list[tuple[str, str]]:
    """The headers in order, less the two that differ from one response to the next."""
    return [(name, value) for name, value in headers.items() if name not in ("date", "x-request-id")]


@pytest.mark.parametrize(
    "raw",
    [
        request("GET", "/healthz"),
        request("POST", "/api/scores", b"{}", "Content-Type: application/json"),
        request(
            "POST",
            "/api/scores",
            b'{"action_id": "x"}',
            "Content-Type: application/json",
            "Authorization: Bearer forged.token.here",
        ),
        request("POST", "/api/scores", b"{", "Content-Type: application/json", "X-Request-ID: my-id-1"),
        request("POST", "/api/scores/batch", b"[]", "Content-Type: application/json"),
    ],
    ids=["healthz", "no-token", "forged-token", "request-id", "batch-no-token"],
)
def test_a_hot_request_is_answered_in_place_as_the_asgi_door_answers_it(raw, answered):
    with Server(STANDARD) as standard:
        expected = exchange(standard, raw)[0]
    with Server(PRODUCTION) as production, production.connect() as connection:
        connection.sendall(raw)
        status, headers, body = Reader(connection).response()
    assert len(answered) == 1
    assert (status, comparable(headers), body) == (expected[0], comparable(expected[1]), expected[2])
    assert headers["date"] and headers["server"] == "uvicorn"
    if b"X-Request-ID: my-id-1" in raw:
        assert headers["x-request-id"] == "my-id-1"
    else:
        assert len(headers["x-request-id"]) == 32


def test_keep_alive_pipelining_and_a_closing_request(answered):
    with Server(PRODUCTION) as server, server.connect() as connection:
        reader = Reader(connection)
        connection.sendall(request("GET", "/healthz"))
        assert reader.response()[0] == 200
        # Three at once: a hot one, one for Django behind it (queued by uvicorn), a hot one
        # behind that (uvicorn's road, since one is in flight); answered in order.
        connection.sendall(
            request("GET", "/healthz", b"", "X-Request-ID: first")
            + request("GET", "/api/nope", b"", "X-Request-ID: second")
            + request("GET", "/healthz", b"", "X-Request-ID: third")
        )
        ids = [reader.response()[1]["x-request-id"] for _ in range(3)]
        assert ids == ["first", "second", "third"]
        connection.sendall(request("GET", "/healthz", b"", "Connection: close"))
        status, headers, _ = reader.response()
        assert status == 200 and headers["connection"] == "close"
        assert reader.closed()
    assert answered == ["/healthz", "/healthz", "/healthz"]  # the first, the second, the last


@pytest.mark.parametrize(
    "raw, status",
    [
        # A declared body past the route's limit: refused before it is read.
        (
            request(
                "POST", "/api/scores", b"", "Content-Length: 999999999", "Content-Type: application/json"
            ),
            413,
        ),
        # A chunked body.
        (
            request(
                "POST",
                "/api/scores",
                b"2\r\n{}\r\n0\r\n\r\n",
                "Transfer-Encoding: chunked",
                "Content-Type: application/json",
            ),
            401,
        ),
        (request("GET", "/healthz?probe=1"), 200),
        (request("GET", "/healthz", version="1.0"), 200),
    ],
    ids=["too-large", "chunked", "query-string", "http-1.0"],
)
def test_what_the_protocol_leaves_to_uvicorn_is_answered_there(raw, status, answered):
    with Server(PRODUCTION) as server, server.connect() as connection:
        connection.sendall(raw)
        got, headers, body = Reader(connection).response()
    assert got == status and headers["content-type"] == "application/json"
    assert answered == []


def test_a_client_gone_mid_body_leaves_the_server_serving(answered):
    with Server(PRODUCTION) as server:
        with server.connect() as connection:
            connection.sendall(request("POST", "/api/scores", b"", "Content-Length: 100")[:-2] + b"\r\n{")
        time.sleep(0.2)
        assert exchange(server, request("GET", "/healthz"))[0][0] == 200
    assert answered == ["/healthz"]


def test_behind_a_middleware_of_uvicorn_every_request_takes_its_road(answered):
    """With proxy headers on, uvicorn wraps the application: the protocol must not skip it."""
    with Server(PRODUCTION, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as server:
        assert exchange(server, request("GET", "/healthz"))[0][0] == 200
    assert answered == []


def test_response_bytes_match_the_asgi_door():
    from scoreboard_project.hotpath import HotResponse

    raw = protocol.response_bytes(
        HotResponse(429, b'{"a":1}', ((b"retry-after", b"3"),)), [(b"server", b"uvicorn")], b"rid", False
    )
    assert raw == (
        b"HTTP/1.1 429 Too Many Requests\r\nserver: uvicorn\r\ncontent-type: application/json\r\n"
        b"x-content-type-options: nosniff\r\ncontent-length: 7\r\nretry-after: 3\r\nx-request-id: rid\r\n"
        b"connection: close\r\n\r\n"
        b'{"a":1}'
    )
