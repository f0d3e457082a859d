#!/usr/bin/env python
"""One client process of `make bench-ws`: holds many WebSocket connections and records,
for every message of every socket, (receive time, the board's top score).

Driven by bench/ws.py over stdin/stdout:
  stdout  CONNECTED {...}   every socket tried; the connected ones have their first message
  stdin   STOP              close the sockets, write the records to --out
  stdout  DONE {...}
Per message the work is one time.time(), one regex search (C) and one list append, so that
the clients' own cost stays small next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TOP_SCORE = re.compile(r'"score":(\d+)')  # the first entry of the board is rank 1


class Socket:
    __slots__ = ("records", "closed", "ws")

    def __init__(self) -> None:
        self.records: list[tuple[float, int]] = []
        self.closed: str | None = None
        self.ws = None


class Clients:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.sockets: list[Socket] = []
        self.failures: dict[str, int] = {}
        self.snapshots = 0
        self.all_snapshots = asyncio.Event()
        self.expected = options.count
        self.samples: list[str] = []  # raw texts of socket 0, for the bare server's payload
        self.tasks: set[asyncio.Task] = set()

    def note_snapshot(self) -> None:
        self.snapshots += 1
        if self.snapshots >= self.expected:
            self.all_snapshots.set()

    async def read(self, index: int, socket: Socket) -> None:
        records, now, search = socket.records, time.time, TOP_SCORE.search
        keep = self.samples if index == 0 and self.options.keep_samples else None
        try:
            async for message in socket.ws:
                t = now()
                found = search(message)
                records.append((t, int(found.group(1)) if found else -1))
                if keep is not None:
                    keep.append(message)
                if len(records) == 1:
                    self.note_snapshot()
        except ConnectionClosed as error:
            socket.closed = f"{error.rcvd.code if error.rcvd else 'no close frame'}"
        except Exception as error:  # noqa: BLE001 (recorded, reported by the orchestrator)
            socket.closed = repr(error)[:200]
        else:
            code = socket.ws.close_code
            socket.closed = f"closed {code}"
        if not records:  # never got its snapshot: do not keep the others waiting for it
            self.note_snapshot()

    async def open_one(self, index: int, limit: asyncio.Semaphore) -> None:
        options = self.options
        error = "unknown"
        for attempt in range(options.retries + 1):
            async with limit:
                try:
                    ws = await connect(
                        options.url,
                        compression=None if options.compression == "none" else "deflate",
                        ping_interval=None,  # like a browser: the server pings, we answer
                        open_timeout=options.open_timeout,
                        close_timeout=5,
                        max_size=2**20,
                    )
                except Exception as exc:  # noqa: BLE001
                    error = type(exc).__name__ + ": " + str(exc)[:80]
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
            socket = Socket()
            socket.ws = ws
            self.sockets.append(socket)
            task = asyncio.get_running_loop().create_task(self.read(index, socket))
            self.tasks.add(task)
            return
        self.failures[error] = self.failures.get(error, 0) + 1
        self.note_snapshot()

    async def run(self) -> None:
        options = self.options
        limit = asyncio.Semaphore(options.concurrency)
        started = time.monotonic()
        if self.expected == 0:
            self.all_snapshots.set()
        await asyncio.gather(*(self.open_one(index, limit) for index in range(options.count)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_snapshots.wait(), timeout=options.snapshot_timeout)
        with_snapshot = sum(1 for socket in self.sockets if socket.records)
        extensions = ""
        if self.sockets:
            extensions = self.sockets[0].ws.response.headers.get("Sec-WebSocket-Extensions", "")
        say(
            "CONNECTED",
            connected=len(self.sockets),
            failed=sum(self.failures.values()),
            failures=self.failures,
            with_snapshot=with_snapshot,
            seconds=round(time.monotonic() - started, 2),
            extensions=extensions,
        )
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "STOP":
                break
        closed_early = {}
        for socket in self.sockets:
            if socket.closed is not None:
                closed_early[socket.closed] = closed_early.get(socket.closed, 0) + 1
        limit = asyncio.Semaphore(500)

        async def close(socket: Socket) -> None:
            async with limit:
                with contextlib.suppress(Exception):  # closing anyway
                    await asyncio.wait_for(socket.ws.close(), timeout=10)

        await asyncio.gather(*(close(socket) for socket in self.sockets))
        with open(options.out, "w") as out:
            json.dump(
                {
                    "records": [socket.records for socket in self.sockets],
                    "samples": self.samples,
                    "closed_early": closed_early,
                    "failures": self.failures,
                },
                out,
            )
        say("DONE", closed_early=closed_early)


def say(kind: str, **fields) -> None:
    sys.stdout.write(f"{kind} {json.dumps(fields)}\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight")
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--open-timeout", type=float, default=30)
    parser.add_argument("--snapshot-timeout", type=float, default=60)
    parser.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--keep-samples", action="store_true", help="keep socket 0's raw texts")
    options = parser.parse_args()
    clients = Clients(options)
    if options.loop == "uvloop":
        import uvloop

        uvloop.run(clients.run())
    else:
        asyncio.run(clients.run())


if __name__ == "__main__":
    main()
