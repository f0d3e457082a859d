#!/usr/bin/env python
"""The application's own CPU per POST /api/scores, without the HTTP server or the load
generator: the ASGI application called directly, N requests in flight, on one event loop.

Run after `make bench` (it uses that run's database, Redis db and tokens, in
bench/results/work):

    .venv/bin/python bench/inprocess.py [--seconds 8] [--concurrency 128] [--stub-io] 2>/dev/null

(stderr takes the log line of every credit, formatted and written as in production).

Prints requests per second and CPU microseconds per request (time.process_time: this
process's user and system time, so the Redis and PostgreSQL client work is included, their
servers' work is not). `--stub-io` answers the two Lua scripts and the credit statement in
process, which leaves the Python work alone. Rate limits and anti-fraud thresholds are raised
so that every request is credited. Compare two checkouts by running this file from each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "results" / "work"


def configure() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(json.loads((WORK / "env.json").read_text()))
    os.environ.update(
        DEBUG="false",
        RATE_LIMIT_PER_USER="100000000",
        RATE_LIMIT_GLOBAL="100000000",
        SUSPICIOUS_VELOCITY_THRESHOLD="2000000000",
        MANUAL_REVIEW_THRESHOLD="2000000000",
    )


def stub_io() -> None:
    """Answer the admission and record scripts and the credit statement without I/O."""
    from datetime import UTC, datetime

    from antifraud import ratelimits
    from leaderboard import services
    from scores.groupcommit import GroupCommitter
    from scores.ledger import Credit

    async def admit(client, keys, args):
        return [[b"", b"ok", 0, 29, 60000, 10, 10, 0, 0, 0, 0] for _ in args[11:]]

    async def record(client, keys, args):
        return [[5] * args[2], 0, []]  # ARGV[3] is the record count

    async def credit(self, unique):
        now = datetime.now(UTC)
        return [Credit(100, now) for _ in unique]

    ratelimits._admit_script = admit
    services.record_script = record
    GroupCommitter._credit_together = credit


async def measure(application, tokens: list[str], seconds: float, concurrency: int) -> None:
    counter = 0

    async def one(number: int) -> None:
        body = json.dumps(
            {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": random.randint(1, 100)}
        ).encode()
        token = tokens[number % len(tokens)].encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8100),
            "client": ("127.0.0.1", 40000 + number % 20000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": "/api/scores",
            "raw_path": b"/api/scores",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8100"),
                (b"authorization", b"Bearer " + token),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await application(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"status {sent[0]['status']}: {sent[1]['body'][:300]!r}")

    # Warm up: every token verified once, every cache and pool filled.
    for start in range(0, len(tokens) + 2048, 256):
        await asyncio.gather(*(one(start + offset) for offset in range(256)))
    stop = False

    async def worker() -> None:
        nonlocal counter
        while not stop:
            counter += 1
            await one(counter)

    counter = 0
    cpu, wall = time.process_time(), time.perf_counter()
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(seconds)
    stop = True
    await asyncio.gather(*workers)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{counter} requests, {counter / wall:.0f}/s, CPU {1e6 * cpu / counter:.1f} us a request")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--stub-io", action="store_true")
    options = parser.parse_args()
    if not (WORK / "env.json").exists():
        raise SystemExit("run `make bench` first: this uses its database, Redis db and tokens")
    configure()
    import uvloop

    from scoreboard_project.asgi import application

    if options.stub_io:
        stub_io()
    tokens = [line for line in (WORK / "tokens.txt").read_text().split() if line]
    uvloop.run(measure(application, tokens, options.seconds, options.concurrency))


if __name__ == "__main__":
    main()
