#!/usr/bin/env python
"""`make bench-ws`: WebSocket fan-out of the production server, against a bare baseline.

One run:
  1. Production setup: a fresh PostgreSQL database and Redis db, migrations, 50 seeded
     players (bench/seed.py), and uvicorn with the production flags (2 workers, uvloop,
     httptools, websockets-sansio), anonymous board-only sockets allowed.
  2. N sockets on /ws/scoreboard from 2 client processes (bench/ws_clients.py), each
     recording (receive time, top score) of every message; all connected with a snapshot.
  3. A series of top-10 changes, one every --interval seconds: each a POST /api/scores by a
     seeded player that makes it the new, unique leader. t_commit = when the POST response
     arrived (the commit precedes the response); t_sent = when the request was sent.
     Latency per (socket, change) = first receipt of a board whose top score is the
     change's, minus t_commit; lost = sockets x changes - deliveries.
  4. Server CPU (utime+stime of uvicorn's processes over the change phase) and memory
     (VmRSS before connecting and with all N connected).
  5. The same against bench/ws_bare.py, one process: websockets.serve + websockets.broadcast
     of the payload captured from production, with the top score changed per change;
     t_commit = when the orchestrator sent the trigger on the bare server's /control socket.
  6. One table, and bench/results/ws-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import queue
import random
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import descendants, processes, sh, wait_http  # noqa: E402 (bench/run.py)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "ws-work"
PY = sys.executable
BIN = Path(PY).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
DATABASE = "scoreboard_bench_ws"
POOL = 10  # players taking the lead in turn (the seeded top 10)
MAX_STEP = 60  # a new leader beats the old one by 1..MAX_STEP points

children: list[subprocess.Popen] = []  # every process group started here, killed at the end


# --------------------------------------------------------------------------- processes


def start(command: list[str], log_name: str, **kwargs) -> subprocess.Popen:
    log = open(WORK / log_name, "w")  # noqa: SIM115 (the child holds it)
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=kwargs.pop("stdout", log), stderr=log, start_new_session=True, **kwargs
    )
    log.close()
    children.append(process)
    return process


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process group, SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any
    process.wait(timeout=10)


def stop_all() -> None:
    for process in reversed(children):
        try:
            stop(process)
        except Exception as error:  # noqa: BLE001
            print(f"could not stop {process.pid}: {error}", file=sys.stderr)
    children.clear()


def ticks(pid: int) -> int:
    """utime + stime of a live process, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int:
    """Busy ticks of all CPUs (user nice system irq softirq steal), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0


def family(pid: int) -> list[int]:
    return sorted(descendants(pid, processes()))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def by_name(prefix: str) -> list[int]:
    return [pid for pid, (name, _) in processes().items() if name.startswith(prefix)]


class Meter:
    """CPU seconds of named groups of processes between two samples."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups

    def sample(self) -> tuple[float, dict[str, dict[int, int]]]:
        found = {name: {pid: ticks(pid) for pid in pids} for name, pids in self.groups.items()}
        found["machine"] = {0: machine_busy_ticks()}
        return time.monotonic(), found

    @staticmethod
    def seconds(before, after) -> tuple[float, dict[str, float]]:
        """(elapsed seconds, CPU seconds per group)."""
        (t0, a), (t1, b) = before, after
        return t1 - t0, {
            name: sum(value - a[name].get(pid, value) for pid, value in now.items()) / CLK_TCK
            for name, now in b.items()
        }


# --------------------------------------------------------------------------- clients


class ClientProcs:
    """The socket-holding client processes and the lines they print."""

    def __init__(self, url: str, sockets: int, count: int, tag: str, options, keep_samples: bool):
        self.lines: queue.Queue = queue.Queue()
        self.procs: list[subprocess.Popen] = []
        self.outs: list[Path] = []
        shares = [sockets // count + (1 if index < sockets % count else 0) for index in range(count)]
        for index, share in enumerate(shares):
            out = WORK / f"records-{tag}-{index}.json"
            command = [
                PY,
                "bench/ws_clients.py",
                "--url",
                url,
                "--count",
                str(share),
                "--out",
                str(out),
                "--concurrency",
                str(options.connect_concurrency),
                "--compression",
                options.compression,
            ]
            if keep_samples and index == 0:
                command.append("--keep-samples")
            process = start(
                command,
                f"clients-{tag}-{index}.log",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            threading.Thread(target=self._pump, args=(index, process), daemon=True).start()
            self.procs.append(process)
            self.outs.append(out)

    def _pump(self, index: int, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.put((index, line.rstrip("\n")))
        self.lines.put((index, None))

    def wait_for(self, kind: str, timeout: float) -> list[dict]:
        found: dict[int, dict] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(self.procs):
            try:
                index, line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"client processes did not say {kind} within {timeout:.0f} s") from None
            if line is None:
                if index in found:  # it said what we wait for, then ended
                    continue
                raise SystemExit(f"client process {index} ended before {kind}; see {WORK}/clients-*.log")
            if line.startswith(kind + " "):
                found[index] = json.loads(line[len(kind) + 1 :])
        return [found[index] for index in range(len(self.procs))]

    def pids(self) -> list[int]:
        return [process.pid for process in self.procs]

    def finish(self) -> list[dict]:
        for process in self.procs:
            process.stdin.write("STOP\n")
            process.stdin.flush()
        self.wait_for("DONE", timeout=120)
        results = []
        for process, out in zip(self.procs, self.outs, strict=True):
            process.wait(timeout=60)
            results.append(json.loads(out.read_text()))
        return results


# --------------------------------------------------------------------------- production


class Api:
    """Keep-alive HTTP to the production server."""

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                return response.status, json.loads(response.read() or b"null")
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def action_for(points: int) -> str:
    """An action type whose bounds admit these points (quest 1-100, match_win 10-200,
    level_up 50-1000)."""
    if 1 <= points <= 100:
        return "quest"
    if points <= 200:
        return "match_win"
    if points <= 1000:
        return "level_up"
    raise ValueError(f"{points} points do not fit one action")


class Leaders:
    """The board's top players take the lead in turn, each change one POST.

    The pool is the top POOL of the seeded board, so that few POSTs bring it level, and big
    enough that each player stays far inside RATE_LIMIT_PER_USER (default 10 a minute): one
    change every 1.5 s is one POST per player every POOL x 1.5 s.
    """

    def __init__(self, api: Api, users: list[int], tokens: list[str], rng: random.Random):
        self.api, self.rng = api, rng
        self.token_of = dict(zip(users, tokens, strict=True))
        self.scores: dict[int, int] = {}  # user id -> total, for the pool
        self.top = 0

    def post(self, user_id: int, points: int) -> tuple[float, float, dict]:
        body = {"action_id": str(uuid.uuid4()), "action_type": action_for(points), "points": points}
        t_sent = time.time()
        status, answer = self.api.request("POST", "/api/scores", body, self.token_of[user_id])
        t_commit = time.time()
        if status != 200 or not answer.get("success"):
            raise SystemExit(f"POST /api/scores for user {user_id} answered {status}: {answer}")
        self.scores[user_id] = answer["new_score"]
        return t_sent, t_commit, answer

    def prepare(self) -> int:
        """Before any socket connects: the pool climbs above the top one by one. Returns
        the number of POSTs."""
        status, board = self.api.request("GET", "/api/scoreboard")
        if status != 200:
            raise SystemExit(f"GET /api/scoreboard answered {status}: {board}")
        entries = [entry for entry in board["leaderboard"] if entry["user_id"] in self.token_of]
        self.top = max(entry["score"] for entry in board["leaderboard"])
        self.scores = {entry["user_id"]: entry["score"] for entry in entries[:POOL]}
        posts = 0
        for user_id in sorted(self.scores, key=self.scores.__getitem__):
            target = self.top + self.rng.randint(1, MAX_STEP)
            while self.scores[user_id] < target:
                self.post(user_id, min(target - self.scores[user_id], 1000))
                posts += 1
            self.top = target
        return posts

    def change(self) -> dict:
        """The pool's last player overtakes the leader by 1..MAX_STEP points: one POST."""
        user_id = min(self.scores, key=self.scores.__getitem__)
        expected = self.top + self.rng.randint(1, MAX_STEP)
        t_sent, t_commit, answer = self.post(user_id, expected - self.scores[user_id])
        if answer["new_score"] != expected or answer["rank"] != 1:
            raise SystemExit(f"expected a new leader at {expected}, got {answer}")
        self.top = expected
        return {"t_sent": t_sent, "t_commit": t_commit, "score": expected, "user_id": user_id}


# --------------------------------------------------------------------------- measuring


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def analyse(records: list[list[list[float]]], changes: list[dict], sockets: int) -> dict:
    """Latency of each (socket, change): first receipt of the change's top score - t_commit."""
    latencies: list[float] = []
    per_change = [[] for _ in changes]
    index_of = {change["score"]: number for number, change in enumerate(changes)}
    out_of_order = 0
    for socket in records:
        seen: dict[int, float] = {}
        last_top = -1
        for t, top in socket:
            if top in index_of and top not in seen:
                seen[top] = t
                if top < last_top:
                    out_of_order += 1
                last_top = top
        for top, t in seen.items():
            number = index_of[top]
            per_change[number].append(t)
            latencies.append((t - changes[number]["t_commit"]) * 1000)
    rows = []
    for number, change in enumerate(changes):
        times = per_change[number]
        row = {
            "score": change["score"],
            "deliveries": len(times),
            "first_ms": round((min(times) - change["t_commit"]) * 1000, 2) if times else None,
            "last_ms": round((max(times) - change["t_commit"]) * 1000, 2) if times else None,
            "p50_ms": round((percentile(times, 0.5) - change["t_commit"]) * 1000, 2) if times else None,
            "post_ms": round((change["t_commit"] - change["t_sent"]) * 1000, 2),
        }
        if "fanout_ms" in change:
            row["server_fanout_ms"] = change["fanout_ms"]
            row["server_gc_ms"] = change["gc_ms"]
            row["server_gc_collections"] = change["gc_collections"]
        rows.append(row)
    spreads = [row["last_ms"] - row["first_ms"] for row in rows if row["deliveries"]]
    deliveries = len(latencies)
    return {
        "deliveries": deliveries,
        "lost": sockets * len(changes) - deliveries,
        "out_of_order": out_of_order,
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies) if latencies else None,
        "min_ms": min(latencies) if latencies else None,
        "spread_ms_median": statistics.median(spreads) if spreads else None,
        "per_change": rows,
    }


def measure(
    name: str, url: str, server_pids, trigger, options, *, keep_samples: bool = False, profile=None
) -> dict:
    """Connect the sockets, run the changes through `trigger(number)`, and measure."""
    pids = server_pids()
    rss_before = {pid: rss_kb(pid) for pid in pids}
    fds_before = {pid: open_fds(pid) for pid in pids}
    print(f"[{name}] connecting {options.sockets} sockets from {options.clients} processes ...", flush=True)
    clients = ClientProcs(url, options.sockets, options.clients, name, options, keep_samples)
    try:
        connected = clients.wait_for("CONNECTED", timeout=options.connect_timeout)
        total = sum(part["connected"] for part in connected)
        failed = sum(part["failed"] for part in connected)
        with_snapshot = sum(part["with_snapshot"] for part in connected)
        failures: dict[str, int] = {}
        for part in connected:
            for reason, count in part["failures"].items():
                failures[reason] = failures.get(reason, 0) + count
        print(
            f"[{name}] connected {total}, failed {failed}, with snapshot {with_snapshot}, "
            f"in {max(part['seconds'] for part in connected):.1f} s; "
            f"extensions: {connected[0]['extensions'] or 'none'}",
            flush=True,
        )
        if failures:
            print(f"[{name}] connection failures: {failures}", flush=True)
        time.sleep(2)
        pids = server_pids()
        rss_after = {pid: rss_kb(pid) for pid in pids}
        fds_after = {pid: open_fds(pid) for pid in pids}
        growth_mb = (sum(rss_after.values()) - sum(rss_before.values())) / 1024
        meter = Meter({"server": pids, "clients": clients.pids(), "redis": by_name("redis-server")})

        idle_before = meter.sample()
        time.sleep(options.idle_seconds)
        idle_seconds, idle_cpu = Meter.seconds(idle_before, meter.sample())

        spies = profile(pids) if profile else []
        print(f"[{name}] {options.changes} changes, one every {options.interval} s ...", flush=True)
        changes = []
        phase_before = meter.sample()
        first = time.monotonic() + 0.2
        for number in range(options.changes):
            delay = first + number * options.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            changes.append(trigger(number))
        time.sleep(options.interval)  # the last change's deliveries
        phase_seconds, phase_cpu = Meter.seconds(phase_before, meter.sample())
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(spy)
        parts = clients.finish()
    finally:
        for process in clients.procs:
            stop(process)
    records = [socket for part in parts for socket in part["records"]]
    closed_early: dict[str, int] = {}
    for part in parts:
        for reason, count in part["closed_early"].items():
            closed_early[reason] = closed_early.get(reason, 0) + count
    result = analyse(records, changes, options.sockets)
    idle_rate = idle_cpu["server"] / idle_seconds
    result.update(
        {
            "sockets_requested": options.sockets,
            "connected": total,
            "connect_failed": failed,
            "connect_failures": failures,
            "with_snapshot": with_snapshot,
            "closed_during_run": closed_early,
            "extensions": connected[0]["extensions"],
            "server_pids": pids,
            "rss_kb_before": rss_before,
            "rss_kb_after": rss_after,
            "sockets_per_process": {pid: fds_after.get(pid, 0) - fds_before.get(pid, 0) for pid in pids},
            "mb_per_1000_sockets": round(growth_mb / total * 1000, 2) if total else None,
            "idle_server_cpu_percent": round(100 * idle_rate, 1),
            "phase_seconds": round(phase_seconds, 2),
            "cpu_percent": {
                group: round(100 * value / phase_seconds, 1) for group, value in phase_cpu.items()
            },
            "server_cpu_ms_per_change": round(
                1000 * (phase_cpu["server"] - idle_rate * phase_seconds) / max(1, len(changes)), 1
            ),
            "client_cpu_ms_per_change": round(1000 * phase_cpu["clients"] / max(1, len(changes)), 1),
            "changes": changes,
        }
    )
    fanouts = [change["fanout_ms"] for change in changes if "fanout_ms" in change]
    if fanouts:
        result["server_fanout_ms_median"] = statistics.median(fanouts)
        result["server_fanout_ms_max"] = max(fanouts)
        result["server_gc_ms_per_broadcast"] = round(
            sum(change["gc_ms"] for change in changes) / len(changes), 1
        )
        result["server_gc_full_collections"] = sum(change["gc_collections"][2] for change in changes)
    if keep_samples:
        result["samples"] = next((part["samples"] for part in parts if part["samples"]), [])
    return result


# --------------------------------------------------------------------------- py-spy


def profile_workers(seconds: float, native: bool = False):
    def start_spies(pids: list[int]) -> list[subprocess.Popen]:
        workers = [
            pid
            for pid in pids
            if "multiprocessing" in cmdline(pid) and "resource_tracker" not in cmdline(pid)
        ]
        spies = []
        for pid in workers or pids:
            spies.append(
                start(
                    [
                        str(BIN / "py-spy"),
                        "record",
                        *(["--native"] if native else ["--nonblocking"]),
                        "--format",
                        "raw",
                        "-r",
                        "200",
                        "-d",
                        str(int(seconds)),
                        "-o",
                        str(WORK / f"profile-{pid}.txt"),
                        "-p",
                        str(pid),
                    ],
                    f"py-spy-{pid}.log",
                )
            )
        return spies

    return start_spies


PROFILE_MARKERS = [
    ("hub._broadcast: board fetch, encode, one task per socket", "_broadcast (leaderboard/hub.py"),
    ("consumer._send_quietly: the per-socket tasks", "_send_quietly (leaderboard/consumers.py"),
    ("  of which uvicorn send()", "send (uvicorn/protocols/websockets/websockets_sansio_impl.py"),
    ("  of which permessage-deflate", "permessage_deflate.py"),
    ("heartbeat loop", "_heartbeat (leaderboard/hub.py"),
    ("garbage collector (native frames only, --profile-native)", "gc_collect"),
    ("HTTP (POST /api/scores)", "score_submit_endpoint"),
]


def profile_report() -> dict:
    """Inclusive share of a few frames, and the busiest leaf functions, over all samples."""
    inclusive = {label: 0 for label, _ in PROFILE_MARKERS}
    leaves: dict[str, int] = {}
    samples = 0
    for path in WORK.glob("profile-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            weight = int(count)
            samples += weight
            for label, marker in PROFILE_MARKERS:
                if marker in stack:
                    inclusive[label] += weight
            leaf = re.sub(r" \(/.*/(site-packages|main|python3\.11)/", " (", stack.split(";")[-1])
            leaves[leaf] = leaves.get(leaf, 0) + weight
    if not samples:
        return {}
    return {
        "samples": samples,
        "inclusive_percent": {label: round(100 * value / samples, 1) for label, value in inclusive.items()},
        "leaves_percent": [
            (leaf, round(100 * leaves[leaf] / samples, 1))
            for leaf in sorted(leaves, key=leaves.get, reverse=True)[:15]
        ],
    }


# --------------------------------------------------------------------------- main


def git_state() -> dict:
    """The code measured: the commit, and the files that differed from it."""

    def git(*args: str) -> str:
        command = [shutil.which("git") or "git", *args]
        return subprocess.run(command, cwd=ROOT, text=True, capture_output=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": git("status", "--short").splitlines()}


def server_log_problems(path: Path) -> dict:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    bad = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Traceback|Exception)\b", line)]
    warnings = [line for line in lines if " WARNING " in line or line.startswith("WARNING")]
    return {"lines": len(lines), "errors": len(bad), "warnings": len(warnings), "first": (bad + warnings)[:5]}


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def print_table(runs: dict[str, dict], options) -> list[str]:
    names = list(runs)
    rows = [
        ("sockets connected / failed", lambda r: f"{r['connected']:,} / {r['connect_failed']:,}"),
        ("latency p50 ms", lambda r: fmt(r["p50_ms"])),
        ("latency p95 ms", lambda r: fmt(r["p95_ms"])),
        ("latency p99 ms", lambda r: fmt(r["p99_ms"])),
        ("latency max ms", lambda r: fmt(r["max_ms"])),
        ("latency min ms", lambda r: fmt(r["min_ms"])),
        ("messages lost", lambda r: fmt(r["lost"])),
        ("server CPU % (change phase)", lambda r: fmt(r["cpu_percent"]["server"])),
        ("server CPU % idle, connected", lambda r: fmt(r["idle_server_cpu_percent"])),
        ("server CPU ms per change", lambda r: fmt(r["server_cpu_ms_per_change"])),
        ("server fan-out ms / broadcast", lambda r: fmt(r.get("server_fanout_ms_median"))),
        ("  of which GC ms (mean)", lambda r: fmt(r.get("server_gc_ms_per_broadcast"))),
        ("delivery spread ms (median)", lambda r: fmt(r["spread_ms_median"])),
        ("server MB per 1,000 sockets", lambda r: fmt(r["mb_per_1000_sockets"], 2)),
        (f"client CPU % ({options.clients} processes)", lambda r: fmt(r["cpu_percent"]["clients"])),
        ("client CPU ms per change", lambda r: fmt(r["client_cpu_ms_per_change"])),
        ("redis CPU %", lambda r: fmt(r["cpu_percent"]["redis"])),
        ("whole machine CPU % (of 200)", lambda r: fmt(r["cpu_percent"]["machine"])),
    ]
    width = max(len(name) for name in names) + 2
    lines = [
        f"WebSocket fan-out: {options.sockets:,} sockets from {options.clients} client processes, "
        f"{options.changes} changes every {options.interval} s, permessage-deflate "
        f"{'on' if options.deflate else 'off'} in both servers (clients offer it)",
        "",
        f"{'':<32}" + "".join(f"{name:>{max(width, 14)}}" for name in names),
    ]
    lines.append("-" * len(lines[-1]))
    for label, value in rows:
        lines.append(f"{label:<32}" + "".join(f"{value(runs[name]):>{max(width, 14)}}" for name in names))
    if "production" in runs and "bare" in runs and runs["bare"]["p95_ms"]:
        ratio = runs["production"]["p95_ms"] / runs["bare"]["p95_ms"]
        lines += ["", f"p95 latency, production / bare: {ratio:.2f}"]
    lines += [
        "",
        "production = uvicorn with the Dockerfile's flags: 2 workers, uvloop, httptools, websockets-sansio;",
        "  t_commit = arrival of the POST /api/scores response (the commit precedes the response).",
        "bare = bench/ws_bare.py, ONE process (one core), websockets.serve + websockets.broadcast,",
        "  uvloop; t_commit = when the trigger was sent on its /control socket.",
    ]
    if "bare-tasks" in runs:
        lines.append(
            "bare-tasks = the same, but one asyncio task per socket awaiting ws.send (hub.py's pattern)."
        )
    lines += [
        "server CPU: utime+stime of the server's processes, % of one core; ms per change = (phase",
        "  CPU - idle CPU) / changes. fan-out = the bare server's own timing of the broadcast",
        "  call (in bare-tasks: until every task is done), and the garbage collections inside it.",
        "spread = last minus first receipt of a change over all sockets (server + client work).",
    ]
    print("\n".join(lines), flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between changes")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--bare-port", type=int, default=8201)
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="both servers with permessage-deflate (uvicorn --ws-per-message-deflate true); production has it off",
    )
    parser.add_argument(
        "--compression", choices=["deflate", "none"], default="deflate", help="what the clients offer"
    )
    parser.add_argument(
        "--connect-concurrency", type=int, default=100, help="handshakes in flight per client process"
    )
    parser.add_argument("--connect-timeout", type=float, default=600)
    parser.add_argument("--idle-seconds", type=float, default=3)
    parser.add_argument("--bare-modes", default="broadcast", help="comma-separated: broadcast,tasks")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the workers in the change phase (perturbs latency)"
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="the same with C frames (py-spy --native, blocking: perturbs more)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_WS_REDIS_URL", "redis://127.0.0.1:6379/7"))
    options = parser.parse_args()
    modes = [mode for mode in options.bare_modes.split(",") if mode]
    if not set(modes) <= {"broadcast", "tasks"}:
        raise SystemExit("--bare-modes takes broadcast and/or tasks")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    biggest = max(options.sockets, -(-options.sockets // options.clients) + 100)
    if limit != resource.RLIM_INFINITY and biggest + 200 > limit:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}: not enough for {options.sockets} sockets in one process")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    try:
        return run(options, modes)
    finally:
        stop_all()


def run(options, modes: list[str]) -> int:
    import psycopg
    import redis

    with psycopg.connect(f"{options.postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    redis.Redis.from_url(options.redis).flushdb()
    env = {
        **os.environ,
        "DB_CONNECTION_STRING": f"{options.postgres}/{DATABASE}",
        "REDIS_URL": options.redis,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "JWT_SECRET": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SCOREBOARD_ENV_FILE": "/nonexistent",
        "WS_ALLOW_ANONYMOUS": "true",
        "WS_CONNECTION_LIMIT": "20000",
        "WS_HEARTBEAT_INTERVAL": "300",
    }
    print(f"migrating {DATABASE} and seeding {options.players} players ...", flush=True)
    sh([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env)
    print(
        sh([PY, "bench/seed.py", str(options.players), str(WORK)], cwd=ROOT, env=env).stdout.strip(),
        flush=True,
    )
    users = [int(line) for line in (WORK / "user_ids.txt").read_text().split()]
    tokens = (WORK / "tokens.txt").read_text().split()

    server = start(
        [
            str(BIN / "uvicorn"),
            "scoreboard_project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(options.port),
            "--workers",
            "2",
            "--loop",
            "uvloop",
            "--http",
            "scoreboard_project.protocol:HotHttpToolsProtocol",
            "--ws",
            "websockets-sansio",
            "--ws-per-message-deflate",
            "true" if options.deflate else "false",
            "--ws-max-size",
            "4096",
            "--no-access-log",
        ],
        "server.log",
        env=env,
    )
    runs: dict[str, dict] = {}
    wait_http(f"http://127.0.0.1:{options.port}/healthz")
    deadline = time.monotonic() + 60
    while len(family(server.pid)) < 3 and time.monotonic() < deadline:  # the supervisor + 2 workers
        time.sleep(0.2)
    api = Api(options.port)
    for _ in range(20):  # warm both workers (the kernel spreads connections between them)
        warm = Api(options.port)
        warm.request("GET", "/api/scoreboard")
        warm.connection.close()
    leaders = Leaders(api, users, tokens, random.Random(options.seed))
    print(
        f"{leaders.prepare()} POSTs bring the top {POOL} players level; the top is {leaders.top}", flush=True
    )
    initial_top = leaders.top

    options.profile = options.profile or options.profile_native
    spies = (
        profile_workers(options.changes * options.interval, options.profile_native)
        if options.profile
        else None
    )
    runs["production"] = measure(
        "production",
        f"ws://127.0.0.1:{options.port}/ws/scoreboard",
        lambda: family(server.pid),
        lambda number: leaders.change(),
        options,
        keep_samples=True,
        profile=spies,
    )
    api.connection.close()
    stop(server)
    scores = [change["score"] for change in runs["production"]["changes"]]
    samples = runs["production"].pop("samples", [])
    template = next((text for text in reversed(samples) if f'"score":{scores[-1]},' in text), None) or next(
        (text for text in reversed(samples) if "LEADERBOARD_UPDATE" in text), None
    )
    if template is None:
        raise SystemExit("no LEADERBOARD_UPDATE captured from the production server")
    (WORK / "payload.txt").write_text(template)
    profile = profile_report() if options.profile else {}

    if not options.skip_bare:
        from websockets.sync.client import connect

        for mode in modes:
            name = "bare" if mode == "broadcast" else f"bare-{mode}"
            bare = start(
                [
                    PY,
                    "bench/ws_bare.py",
                    "--port",
                    str(options.bare_port),
                    "--template",
                    str(WORK / "payload.txt"),
                    "--snapshot-score",
                    str(initial_top),
                    "--mode",
                    mode,
                    "--compression",
                    "deflate" if options.deflate else "none",
                ],
                f"{name}.log",
                stdout=subprocess.PIPE,
                text=True,
            )
            if bare.stdout.readline().strip() != "READY":
                raise SystemExit(f"the bare server did not start; see {WORK}/{name}.log")
            control = connect(f"ws://127.0.0.1:{options.bare_port}/control", compression=None, max_size=2**22)

            def trigger(number: int, control=control) -> dict:
                payload = re.sub(r'"score":\d+', f'"score":{scores[number]}', template, count=1)
                t_sent = time.time()
                control.send(payload)
                answer = json.loads(control.recv(timeout=60))
                return {
                    "t_sent": t_sent,
                    "t_commit": t_sent,
                    "score": scores[number],
                    "fanout_ms": answer["fanout_ms"],
                    "gc_ms": answer["gc_ms"],
                    "gc_collections": answer["gc_collections"],
                }

            runs[name] = measure(
                name,
                f"ws://127.0.0.1:{options.bare_port}/ws/scoreboard",
                lambda bare=bare: [bare.pid],
                trigger,
                options,
            )
            control.close()
            stop(bare)

    print()
    lines = print_table(runs, options)
    logs = {
        name: server_log_problems(WORK / log)
        for name, log in [("production", "server.log")]
        + [(name, f"{name}.log") for name in runs if name != "production"]
    }
    for name, problems in logs.items():
        print(
            f"{name} log: {problems['lines']} lines, {problems['errors']} errors, {problems['warnings']} warnings"
        )
        for line in problems["first"]:
            print(f"    {line[:200]}")
    for name, result in runs.items():
        notes = []
        cpu = result["cpu_percent"]
        other = cpu["machine"] - cpu["server"] - cpu["clients"] - cpu["redis"]
        if other > 15:
            notes.append(f"other processes used ~{other:.0f} % CPU during the change phase: disturbed")
        if result["closed_during_run"]:
            notes.append(f"sockets closed during the run: {result['closed_during_run']}")
        if result["connect_failures"]:
            notes.append(f"connection failures: {result['connect_failures']}")
        if result["out_of_order"]:
            notes.append(f"boards received out of order: {result['out_of_order']}")
        for note in notes:
            print(f"{name}: {note}")
    if profile:
        print(
            f"\npy-spy of the production workers in the change phase ({profile['samples']} samples{'' if options.profile_native else ', idle excluded'}):"
        )
        for label, share in profile["inclusive_percent"].items():
            print(f"{share:6.1f} %  {label}")
        print("busiest leaf functions:")
        for leaf, share in profile["leaves_percent"]:
            print(f"{share:6.1f} %  {leaf[:150]}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = RESULTS / f"ws-{stamp}.json"
    output.write_text(
        json.dumps(
            {
                "options": vars(options),
                "rlimit_nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                "initial_top": initial_top,
                "git": git_state(),
                "runs": runs,
                "table": lines,
                "logs": logs,
                "profile": profile,
                "work": str(WORK.relative_to(ROOT)),
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nresults: {output.relative_to(ROOT)}; logs in {WORK.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
