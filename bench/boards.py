#!/usr/bin/env python
"""`make bench-boards`: board reads at scale, on the production server, PostgreSQL and Redis.

Seeds, DIRECTLY into a fresh Redis db in the board layout of leaderboard/boards.py:
  - board `big` (all-time sum, higher is better, shared ties): --players entries (1,000,000),
  - 9 more boards (weekly/daily/monthly/event/all-time, sum/best/latest, asc and desc,
    shared and first_reached ties): --other-size entries each (100,000), in their current
    period,
  - every player's name in `leaderboard:names`,
and in a fresh PostgreSQL database the Board rows (the servers read board definitions from
it) and --users real players with live sessions and access tokens (bench/seed.py), each also
on every board at a random position (their values drawn like everyone else's).
Then starts the production server as bench/run.py does (uvicorn, 2 workers) and measures with
wrk, at c=1 (top-100 and around-me: the service time, no queueing), c=32 and c=128:
  top-100       GET /api/boards/big?limit=100
  cursor        GET /api/boards/big?limit=100&cursor=<the cursor of the middle entry>
  around-me     GET /api/boards/big/around-me?radius=5, each request the next of the --users
                tokens (bench/around.lua)
and the same top-100 and around-me on a 100,000-entry board at c=128.
Also Redis memory: INFO used_memory before and after seeding the big board's two keys, and
MEMORY USAGE of its idx (sorted set), and what the players' hashes took, in bytes per entry.
Prints one table and writes it all to bench/results/boards-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402 (bench/run.py: wrk, CPU meter, server command, environment)

RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "boards-work"
PY = sys.executable
PROFILED = {"top-100 c=128": "profile-top", "around-me r=5 c=128": "profile-around"}
SYNTHETIC_BASE = 10_000_000  # ids of the players who exist in Redis only
CHUNK = 5_000

# (code, title, window, operator, order, tie policy, time zone); the first is `big`.
BOARDS = [
    ("big", "All time, 1M players", "all_time", "sum", "desc", "shared", "UTC"),
    ("weekly", "Weekly sum", "weekly", "sum", "desc", "shared", "UTC"),
    ("daily", "Daily sum", "daily", "sum", "desc", "shared", "Europe/Paris"),
    ("monthly_best", "Monthly best", "monthly", "best", "desc", "first_reached", "UTC"),
    ("event", "Event", "event", "sum", "desc", "shared", "UTC"),
    ("latest", "Latest", "all_time", "latest", "desc", "shared", "UTC"),
    ("fastest", "Fastest (lower is better)", "all_time", "best", "asc", "first_reached", "UTC"),
    ("weekly_ny", "Weekly sum, New York", "weekly", "sum", "desc", "first_reached", "America/New_York"),
    ("daily_best", "Daily best", "daily", "best", "desc", "shared", "UTC"),
    ("monthly_sum", "Monthly sum", "monthly", "sum", "desc", "shared", "Asia/Tokyo"),
]


# ---- the seeding step, run with the bench environment (Django set up) ---------------------


def seed_redis(players: int, other_size: int, boards: int, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scoreboard_project.settings")
    import django

    django.setup()
    from django.utils import timezone

    from leaderboard.board_selectors import cursor_encode
    from leaderboard.boards import BoardDef, member, period_index, player_entry_text, player_key
    from leaderboard.models import Board
    from leaderboard.periods import period_at
    from leaderboard.ranking import NAMES_KEY
    from scoreboard_project.redis import redis_client

    client = redis_client()
    rng = random.Random(13)
    now = timezone.now()
    now_micros = int(now.timestamp() * 1_000_000)
    real = [int(line) for line in (out / "user_ids.txt").read_text().split()]
    info: dict = {"boards": []}
    for number, (code, title, window, operator, order, ties, zone) in enumerate(BOARDS[:boards]):
        row = Board.objects.create(
            code=code,
            title=title,
            window=window,
            operator=operator,
            order=order,
            tie_policy=ties,
            time_zone=zone,
            starts_at=now - timedelta(days=1) if window == "event" else None,
            ends_at=now + timedelta(days=7) if window == "event" else None,
        )
        board = BoardDef.of(row)
        period = period_at(board, now)
        index = period_index(code, period.key)
        size = players if number == 0 else other_size
        earliest = int(period.starts_at.timestamp() * 1_000_000) if period.starts_at else 0
        earliest = max(earliest, now_micros - 3600 * 1_000_000)
        ids = real + list(range(SYNTHETIC_BASE, SYNTHETIC_BASE + size - len(real)))
        top = 100 if operator == "latest" else 10 * size  # many equal values on `latest`
        before = client.info("memory")["used_memory"]
        started = time.monotonic()
        for first in range(0, len(ids), CHUNK):
            scores, held = {}, {}
            for user_id in ids[first : first + CHUNK]:
                text = member(rng.randint(earliest, now_micros), user_id)
                scores[text] = board.sign * rng.randint(1, top)
                held[user_id] = player_entry_text(period.key, text, int(scores[text]))
            with client.pipeline(transaction=False) as pipe:
                pipe.zadd(index, scores)
                for user_id, value in held.items():
                    pipe.hset(player_key(user_id), code, value)
                pipe.execute()
        seconds = time.monotonic() - started
        after = client.info("memory")["used_memory"]
        entry = {
            "code": code,
            "period": period.key,
            "window": window,
            "operator": operator,
            "order": order,
            "tie_policy": ties,
            "entries": client.zcard(index),
            "seed_seconds": round(seconds, 1),
            "used_memory_delta": after - before,
        }
        if number == 0:
            index_bytes = client.memory_usage(index, samples=0)
            # The players' hashes (one key per player, this board's field in each): the rest.
            at_bytes = after - before - index_bytes
            entry.update(
                {
                    "index_key": index,
                    "idx_memory_usage": index_bytes,
                    "at_memory_usage": at_bytes,
                    "idx_bytes_per_entry": round(index_bytes / size, 1),
                    "at_bytes_per_entry": round(at_bytes / size, 1),
                    "used_memory_bytes_per_entry": round((after - before) / size, 1),
                    "encoding_idx": client.object("encoding", index).decode(),
                    "encoding_at": client.object("encoding", player_key(ids[0])).decode(),
                }
            )
            middle = size // 2
            (text, score), *_ = client.zrange(index, middle, middle, withscores=True)
            (out / "cursor.txt").write_text(cursor_encode(period, int(score), text.decode()) + "\n")
        info["boards"].append(entry)
        print(
            f"seeded board {code} ({period.key}): {entry['entries']} entries in {seconds:.1f} s", flush=True
        )
    # Names of the players who exist in Redis only (bench/seed.py named the real ones).
    most = max(players, other_size) - len(real)
    before = client.info("memory")["used_memory"]
    for first in range(SYNTHETIC_BASE, SYNTHETIC_BASE + most, CHUNK):
        last = min(first + CHUNK, SYNTHETIC_BASE + most)
        client.hset(NAMES_KEY, mapping={user_id: f"player_{user_id}" for user_id in range(first, last)})
    info["names"] = {
        "entries": client.hlen(NAMES_KEY),
        "used_memory_delta": client.info("memory")["used_memory"] - before,
        "memory_usage": client.memory_usage(NAMES_KEY, samples=0),
    }
    info["used_memory"] = client.info("memory")["used_memory"]
    (out / "seed.json").write_text(json.dumps(info, indent=2))


# ---- the run --------------------------------------------------------------------------------


def fetch(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback only)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--players", type=int, default=1_000_000, help="entries on board `big`")
    parser.add_argument(
        "--boards", type=int, default=10, help=f"boards in all, `big` included (≤ {len(BOARDS)})"
    )
    parser.add_argument("--other-size", type=int, default=100_000, help="entries on each other board")
    parser.add_argument("--users", type=int, default=1_000, help="real players with tokens (around-me)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_BOARDS_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server during top-100 and around-me at c=128"
    )
    parser.add_argument("--seed-step", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.seed_step:
        seed_redis(options.players, options.other_size, options.boards, options.seed_step)
        return 0
    if options.users > min(options.players, options.other_size):
        raise SystemExit("--users must not exceed the boards' sizes")

    import redis

    dsn = bench.database_create(options.postgres, "scoreboard_bench_boards")
    client = redis.Redis.from_url(options.redis)
    client.flushdb()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    env = bench.bench_env(dsn, options.redis)
    print(f"migrating and seeding {options.users} players with tokens ...", flush=True)
    bench.sh([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env)
    print(bench.sh([PY, "bench/seed.py", str(options.users), str(WORK)], cwd=ROOT, env=env).stdout.strip())
    print(
        f"seeding Redis: board big {options.players:,} entries, {options.boards - 1} more of "
        f"{options.other_size:,} ...",
        flush=True,
    )
    step = subprocess.run(
        [
            PY,
            "bench/boards.py",
            "--seed-step",
            str(WORK),
            "--players",
            str(options.players),
            "--other-size",
            str(options.other_size),
            "--boards",
            str(options.boards),
        ],
        cwd=ROOT,
        env=env,
        text=True,
    )
    if step.returncode:
        raise SystemExit("seeding failed")
    seed = json.loads((WORK / "seed.json").read_text())
    cursor = (WORK / "cursor.txt").read_text().strip()
    tokens = (WORK / "tokens.txt").read_text().split()
    other = BOARDS[1][0] if options.boards > 1 else None

    command = bench.server_command("uvicorn", options.workers, "127.0.0.1", options.port)
    log = open(WORK / "server.log", "w")  # noqa: SIM115 (closed at the end)
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{options.port}"
    top = "/api/boards/big?limit=100"
    middle = f"/api/boards/big?limit=100&cursor={cursor}"
    around = "/api/boards/big/around-me?radius=5"
    # c=1: one request at a time, the service time without queueing.
    plan = (
        [(f"top-100 c={c}", "get.lua", [top], c) for c in (1, 32, 128)]
        + [(f"cursor mid c={c}", "get.lua", [middle], c) for c in (32, 128)]
        + [
            (f"around-me r=5 c={c}", "around.lua", [str(WORK / "tokens.txt"), around], c)
            for c in (1, 32, 128)
        ]
    )
    if other:
        plan += [
            (f"{other} top-100 c=128", "get.lua", [f"/api/boards/{other}?limit=100"], 128),
            (
                f"{other} around c=128",
                "around.lua",
                [str(WORK / "tokens.txt"), f"/api/boards/{other}/around-me?radius=5"],
                128,
            ),
        ]
    results: dict[str, dict] = {}
    samples: dict[str, dict] = {}
    try:
        bench.wait_http(f"{url}/healthz")
        meter = bench.CpuMeter(server.pid)
        # Check each endpoint answers 200 (and keep a sample) before measuring.
        for name, path, token in [
            ("boards", "/api/boards", None),
            ("top-100", top, None),
            ("cursor mid", middle, None),
            ("around-me", around, tokens[0]),
            ("around-me (last token)", around, tokens[-1]),
        ] + ([(f"{other} around", f"/api/boards/{other}/around-me?radius=5", tokens[0])] if other else []):
            status, body = fetch(url + path, token)
            parsed = json.loads(body) if body.startswith(b"{") else None
            summary = body[:300].decode(errors="replace")
            if status == 200 and parsed is not None:
                entries = parsed.get("leaderboard") or parsed.get("boards") or []
                player = parsed.get("player")
                summary = (
                    f"{len(entries)} entries, total_players={parsed.get('total_players')}, "
                    f"first={entries[0] if entries else None}"
                    + (f", player rank={player and player.get('rank')}" if "player" in parsed else "")
                )
            samples[name] = {"status": status, "bytes": len(body), "sample": summary}
            print(f"  {name}: HTTP {status}, {len(body)} bytes: {summary[:260]}", flush=True)
        # Warm every worker.
        bench.run_wrk("get.lua", [top], url=url, connections=32, seconds=2, meter=meter)
        bench.run_wrk(
            "around.lua", [str(WORK / "tokens.txt"), around], url=url, connections=32, seconds=2, meter=meter
        )
        for name, script, args, connections in plan:
            print(f"{name}", flush=True)
            spies = []
            if options.profile and name in PROFILED:
                bench.WORK = WORK / PROFILED[name]
                bench.WORK.mkdir(exist_ok=True)
                spies = bench.profile_start(server.pid, options.seconds - 2)
            results[name] = bench.run_wrk(
                script,
                args,
                url=url,
                connections=connections,
                seconds=options.seconds,
                meter=meter,
                threads=min(2, connections),
            )
            for spy in spies:
                spy.wait(timeout=60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()

    big = seed["boards"][0]
    print()
    print(
        f"board big: {big['entries']:,} entries; Redis MEMORY USAGE idx {big['idx_memory_usage']:,} B "
        f"({big['idx_bytes_per_entry']} B/entry, {big['encoding_idx']}), player hashes {big['at_memory_usage']:,} B "
        f"({big['at_bytes_per_entry']} B/entry, {big['encoding_at']}); INFO used_memory grew "
        f"{big['used_memory_delta']:,} B ({big['used_memory_bytes_per_entry']} B/entry, both keys)"
    )
    names = seed["names"]
    print(
        f"names hash: {names['entries']:,} entries, {names['memory_usage']:,} B "
        f"({names['memory_usage'] / max(names['entries'], 1):.1f} B/entry); Redis used_memory "
        f"after seeding {seed['used_memory']:,} B"
    )
    for entry in seed["boards"][1:]:
        print(
            f"board {entry['code']} ({entry['window']} {entry['operator']} {entry['order']} "
            f"{entry['tie_policy']}, period {entry['period']}): {entry['entries']:,} entries, "
            f"used_memory +{entry['used_memory_delta']:,} B"
        )
    print()
    header = (
        f"{'measurement':<24}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        "   CPU % (server / postgres / redis / loadgen)"
    )
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        cpu = row["cpu_percent"]
        print(
            f"{name:<24}{row['per_second']:>8.0f}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['errors']:>8}   "
            f"{cpu['server']} / {cpu['postgres']} / {cpu['redis']} / {cpu['loadgen']}"
        )
    profile = {}
    for measurement, folder in PROFILED.items() if options.profile else ():
        bench.WORK = WORK / folder
        profile[measurement] = found = bench.profile_report()
        bench.profile_print(found, measurement)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = RESULTS / f"boards-{stamp}.json"
    output.write_text(
        json.dumps(
            {
                "workers": options.workers,
                "players": options.players,
                "other_size": options.other_size,
                "users": options.users,
                "seconds": options.seconds,
                "seed": seed,
                "checks": samples,
                "results": results,
                "profile": profile,
            },
            indent=2,
        )
    )
    print(f"\nresults: {output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
