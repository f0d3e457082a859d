#!/usr/bin/env python
"""CPU that metrics and request ids add to one hot-path request, before vs after, one run.

Drives the lean ASGI router directly (no server, no network) with GET /healthz: once as it
is, and once with the router's `serve` as it was before instrumentation (no request id, no
metrics). Blocks of the two alternate; the per-request CPU time (process_time) of each and
the difference are printed. The score-outcome and board-cache counters that POST /api/scores
and GET /api/scoreboard add on top are timed alone.

    python bench/observability_overhead.py [--requests 20000] [--rounds 7]
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) python bench/observability_overhead.py   # as in production
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scoreboard_project.settings")
os.environ.setdefault("DEBUG", "true")  # placeholder secrets are fine: nothing is signed here

import django  # noqa: E402

django.setup()

from scoreboard_project import metrics  # noqa: E402
from scoreboard_project.hotpath import ClientGone, HotPathApp, healthz_endpoint, respond  # noqa: E402


class Before(HotPathApp):
    """The router's serve() before instrumentation (commit 6a0c8dd)."""

    async def serve(self, route, scope, receive, send) -> None:
        handler, body_limit = route
        try:
            response = await self.handle(handler, body_limit, scope, receive)
        except ClientGone:
            return
        await respond(send, response)


SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/healthz",
    "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
}
MESSAGE = {"type": "http.request", "body": b"", "more_body": False}


async def receive():
    return MESSAGE


async def send(message):
    return None


async def run_block(app, count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        await app(SCOPE, receive, send)
    return (time.process_time() - started) / count * 1e6


async def main(requests: int, rounds: int) -> None:
    routes = {("GET", "/healthz"): (healthz_endpoint, 16384)}
    after, before = HotPathApp(None, routes), Before(None, routes)
    await run_block(after, 2000)  # warm both (label children, caches)
    await run_block(before, 2000)
    timings: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        timings["before"].append(await run_block(before, requests))
        timings["after"].append(await run_block(after, requests))
    mode = "files (PROMETHEUS_MULTIPROC_DIR)" if metrics.MULTIPROC_DIR else "in memory"
    print(f"metrics storage: {mode}; {rounds} rounds of {requests} requests each, medians")
    b, a = statistics.median(timings["before"]), statistics.median(timings["after"])
    print(f"GET /healthz through the router: before {b:.2f} us, after {a:.2f} us, added {a - b:.2f} us")
    number = 200_000
    for label, statement in (
        ("score outcome counter (POST /api/scores)", lambda: metrics.score_counted("accepted")),
        ("board cache counter (GET /api/scoreboard)", metrics.BOARD_PROCESS_HIT.inc),
    ):
        cost = min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6
        print(f"{label}: {cost:.2f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
