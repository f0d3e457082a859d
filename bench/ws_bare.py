#!/usr/bin/env python
"""The baseline of `make bench-ws`: a bare `websockets` server in ONE process (one core).

Every socket gets a snapshot when it connects (the template with --snapshot-score as the
top score), then whatever is broadcast. A connection on /control is the orchestrator's:
each text it sends is broadcast as-is to every other socket, and the server answers with
how long the fan-out took in this process (and the garbage collections during it):

  --mode broadcast   websockets.broadcast(clients, payload): one synchronous loop that
                     frames (and compresses) the message into each transport;
  --mode tasks       one asyncio task per socket calling `await ws.send(payload)`, the
                     pattern of leaderboard/hub.py + ScoreboardConsumer.send_text, timed
                     until every task has finished.

Keepalive pings are websockets' default (every 20 s), as in uvicorn. --compression deflate
is websockets' default permessage-deflate (window 12, memLevel 5), the same settings as
uvicorn's --ws-per-message-deflate true; `none` matches uvicorn's --ws-per-message-deflate false.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import re
import sys
import time
from pathlib import Path

import websockets
from websockets.asyncio.server import ServerConnection

TOP_SCORE = re.compile(r'"score":\d+')


def with_top_score(template: str, score: int) -> str:
    return TOP_SCORE.sub(f'"score":{score}', template, count=1)


class Bare:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.clients: set[ServerConnection] = set()
        self.snapshot = with_top_score(Path(options.template).read_text(), options.snapshot_score)
        self.broadcasts: list[dict] = []
        # Garbage collections during the fan-outs: (generation, milliseconds) each.
        self.collections: list[tuple[int, float]] = []
        self.gc_started = 0.0
        gc.callbacks.append(self._gc_callback)

    def _gc_callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.gc_started = time.perf_counter()
        else:
            self.collections.append((info["generation"], (time.perf_counter() - self.gc_started) * 1000))

    async def handler(self, ws: ServerConnection) -> None:
        if ws.request.path == "/control":
            return await self.control(ws)
        self.clients.add(ws)
        try:
            await ws.send(self.snapshot)
            async for _message in ws:  # clients say nothing; keep reading for the close
                pass
        finally:
            self.clients.discard(ws)

    async def control(self, ws: ServerConnection) -> None:
        async for payload in ws:
            if payload == "STATS":
                await ws.send(json.dumps({"clients": len(self.clients), "broadcasts": self.broadcasts}))
                continue
            self.collections.clear()
            started = time.perf_counter()
            count = len(self.clients)
            if self.options.mode == "broadcast":
                websockets.broadcast(self.clients, payload)
            else:
                await asyncio.gather(*(self._send(client, payload) for client in list(self.clients)))
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.broadcasts.append(
                {
                    "sockets": count,
                    "fanout_ms": round(elapsed_ms, 3),
                    "gc_ms": round(sum(ms for _, ms in self.collections), 3),
                    "gc_collections": [sum(1 for gen, _ in self.collections if gen == g) for g in range(3)],
                    "gc_max_ms": round(max((ms for _, ms in self.collections), default=0.0), 3),
                }
            )
            await ws.send(json.dumps(self.broadcasts[-1]))

    async def _send(self, client: ServerConnection, payload: str) -> None:
        with contextlib.suppress(Exception):  # a closed peer: like the hub, say nothing
            await client.send(payload)

    async def run(self) -> None:
        async with websockets.serve(
            self.handler,
            self.options.host,
            self.options.port,
            backlog=2048,  # uvicorn's default backlog
            max_size=2**20,  # clients send nothing; /control sends whole payloads
            compression=None if self.options.compression == "none" else "deflate",
        ):
            print("READY", flush=True)
            await asyncio.get_running_loop().create_future()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--template", required=True, help="file holding one LEADERBOARD_UPDATE text")
    parser.add_argument("--snapshot-score", type=int, required=True)
    parser.add_argument("--mode", choices=["broadcast", "tasks"], default="broadcast")
    parser.add_argument("--compression", choices=["deflate", "none"], default="none")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    options = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    bare = Bare(options)
    if options.loop == "uvloop":
        import uvloop

        uvloop.run(bare.run())
    else:
        asyncio.run(bare.run())


if __name__ == "__main__":
    main()
