"""Metrics and log lines for a scripted sequence of requests through the production ASGI
app, /metrics protection, and the metrics of several processes in one scrape."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import shared_task
from channels.testing import WebsocketCommunicator
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from leaderboard.board import local_board_invalidate
from scoreboard_project import aio, metrics
from scoreboard_project.logs import JsonFormatter

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-Horse-battery-9"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def scrape(asgi) -> dict[tuple[str, frozenset], float]:
    response = asgi("GET", "/metrics")
    assert response.status_code == 200, response.content
    assert response["content-type"].startswith("text/plain")
    return samples(response.content.decode())


def value(scraped: dict, name: str, **labels) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


class Moved:
    """The difference of two scrapes."""

    def __init__(self, before: dict, after: dict) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


@pytest.fixture
def log_lines():
    """What the configured console handler writes (the production JSON format)."""
    import scoreboard_project.asgi  # noqa: F401  its django.setup() configures logging again

    handler = next(
        handler for handler in logging.getLogger().handlers if isinstance(handler.formatter, JsonFormatter)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)

    def lines() -> list[dict]:
        handler.flush()
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    handler.setStream(previous)


def post_json(asgi, path: str, body: dict, token: str | None = None, request_id: str | None = None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if request_id:
        headers["x-request-id"] = request_id
    return asgi("POST", path, json.dumps(body).encode(), headers)


def ws_connect_and_leave(token: str, request_id: str) -> list[dict]:
    from scoreboard_project.asgi import application

    async def session() -> list[dict]:
        communicator = WebsocketCommunicator(
            application,
            "/ws/scoreboard",
            headers=[(b"authorization", f"Bearer {token}".encode()), (b"x-request-id", request_id.encode())],
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        received = [await communicator.receive_json_from(timeout=5)]
        await communicator.disconnect()
        return received

    return aio.run(session())


def test_a_scripted_session_moves_each_metric_and_logs_each_event(asgi, action_types, settings, log_lines):
    settings.RATE_LIMIT_PER_USER = 2
    before = scrape(asgi)

    registered = post_json(asgi, "/api/auth/register", {"username": "obs_ada", "password": PASSWORD})
    assert registered.status_code == 201
    user_id = registered.json()["user_id"]
    wrong = post_json(
        asgi, "/api/auth/token", {"username": "obs_ada", "password": "nope-Nope-1"}, request_id="login-wrong"
    )
    assert wrong.status_code == 401 and wrong["x-request-id"] == "login-wrong"
    token = post_json(asgi, "/api/auth/token", {"username": "obs_ada", "password": PASSWORD}).json()["access"]

    action = {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 10}
    credited = post_json(asgi, "/api/scores", action, token, request_id="credit-1")
    assert credited.status_code == 200 and credited["x-request-id"] == "credit-1"
    replayed = post_json(asgi, "/api/scores", action, token, request_id="credit-1-again")
    assert replayed.status_code == 200 and replayed["idempotent-replayed"] == "true"
    # The replay counted against the limit of 2 too: the next update is refused.
    refused = post_json(
        asgi,
        "/api/scores",
        {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 5},
        token,
        request_id="credit-2",
    )
    assert refused.status_code == 429
    board = asgi("GET", "/api/scoreboard", headers={"x-request-id": "bad id <script>"})
    assert board.status_code == 200
    generated = board["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0, "an unsafe id is replaced"
    snapshot = ws_connect_and_leave(token, "ws-1")
    assert snapshot[0]["type"] == "LEADERBOARD_UPDATE"

    moved = Moved(before, scrape(asgi))
    requests = "scoreboard_http_requests_total"
    assert moved(requests, method="POST", route="/api/auth/register", status="201") == 1
    assert moved(requests, method="POST", route="/api/auth/token", status="401") == 1
    assert moved(requests, method="POST", route="/api/auth/token", status="200") == 1
    assert moved(requests, method="POST", route="/api/scores", status="200") == 2
    assert moved(requests, method="POST", route="/api/scores", status="429") == 1
    assert moved(requests, method="GET", route="/api/scoreboard", status="200") == 1
    assert moved(requests, method="GET", route="/metrics", status="200") == 1  # the first scrape
    latency = "scoreboard_http_request_duration_seconds"
    assert moved(f"{latency}_count", method="POST", route="/api/scores") == 3
    assert moved(f"{latency}_bucket", method="POST", route="/api/scores", le="+Inf") == 3
    assert moved(f"{latency}_sum", method="POST", route="/api/scores") > 0

    updates = "scoreboard_score_updates_total"
    assert moved(updates, outcome="accepted", reason="") == 1
    assert moved(updates, outcome="replayed", reason="") == 1
    assert moved(updates, outcome="rejected", reason="RATE_LIMIT_EXCEEDED") == 1
    assert moved("scoreboard_rate_limit_refusals_total", verdict="user") == 1

    assert moved("scoreboard_ws_connects_total", result="accepted") == 1
    assert moved("scoreboard_ws_connections") == 0, "connected, then gone again"
    assert moved("scoreboard_ws_messages_sent_total", type="LEADERBOARD_UPDATE") == 1  # the snapshot
    board_reads = moved("scoreboard_leaderboard_cache_total", layer="process", result="hit") + moved(
        "scoreboard_leaderboard_cache_total", layer="process", result="miss"
    )
    assert board_reads == 2, "the GET and the socket's snapshot each read the board once"
    assert moved("scoreboard_db_query_duration_seconds_count", source="orm", operation="INSERT") >= 2

    lines = log_lines()
    by_event: dict[str, list[dict]] = {}
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        by_event.setdefault(line.get("event", ""), []).append(line)

    (login_failed,) = by_event["login_failed"]
    assert login_failed["reason"] == "wrong_password" and login_failed["user_id"] == user_id
    (auth_failed,) = by_event["auth_failed"]
    assert auth_failed["route"] == "/api/auth/token" and auth_failed["client_ip"] == "127.0.0.1"
    assert login_failed["request_id"] == auth_failed["request_id"] == "login-wrong"

    score_lines = {line["outcome"]: line for line in by_event["score_update"]}
    accepted = score_lines["accepted"]
    assert accepted["request_id"] == "credit-1"
    assert (accepted["user_id"], accepted["points"], accepted["action_id"]) == (
        user_id,
        10,
        action["action_id"],
    )
    assert accepted["total"] == 10 and accepted["credited_at"] and accepted["time"]
    assert score_lines["replayed"]["request_id"] == "credit-1-again"
    rejected = score_lines["rejected"]
    assert rejected["reason"] == "RATE_LIMIT_EXCEEDED" and rejected["request_id"] == "credit-2"
    (limited,) = by_event["rate_limited"]
    assert limited["user_id"] == user_id and limited["verdict"] == "user"
    assert limited["request_id"] == "credit-2", "the refusal's line and the request share the id"

    (connect,) = by_event["ws_connect"]
    (disconnect,) = by_event["ws_disconnect"]
    assert connect["user_id"] == disconnect["user_id"] == user_id
    assert connect["request_id"] == disconnect["request_id"] == "ws-1"


def test_log_lines_outside_a_request_carry_no_request_id(log_lines):
    logging.getLogger("scoreboard.test").info("alone", extra={"event": "check"})
    (line,) = [line for line in log_lines() if line.get("event") == "check"]
    assert "request_id" not in line and line["message"] == "alone"


def test_the_lean_log_line_is_the_record_and_line_logger_info_makes(log_lines):
    """`info_line` (a line per credit) skips LogRecord's constructor: same record, same line."""
    from scoreboard_project.logs import FIELDS, info_line

    logger = logging.getLogger("scoreboard.test")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    fields = {"event": "check", "user_id": 7, "points": 3, "credited_at": None}
    try:
        logger.info("credited user=%s points=%s", 7, 3, extra=fields)
        info_line(logger, "credited user=%s points=%s", (7, 3), fields)
        logger.setLevel(logging.WARNING)
        info_line(logger, "not at this level", (), {"event": "hidden"})
    finally:
        logger.setLevel(logging.NOTSET)
        logger.removeHandler(keep)
    usual, lean = (vars(record).copy() for record in records)
    assert lean.pop(FIELDS) == fields
    timing = ("created", "msecs", "relativeCreated")
    assert {key: value for key, value in usual.items() if key not in timing} == {
        key: value for key, value in lean.items() if key not in timing
    }
    assert 0 <= lean["created"] - usual["created"] < 5
    assert lean["msecs"] == int((lean["created"] - int(lean["created"])) * 1000)
    first, second = [line for line in log_lines() if line.get("event") in ("check", "hidden")]
    assert first.pop("time") <= second.pop("time") and first == second
    assert first["message"] == "credited user=7 points=3" and first["user_id"] == 7


def test_board_reads_count_hits_and_misses(asgi, settings):
    settings.LEADERBOARD_LOCAL_TTL = 60
    assert asgi("GET", "/api/scoreboard").status_code == 200  # warm: starts the change listener
    time.sleep(0.3)  # the listener's first subscription invalidates once
    asgi("GET", "/api/scoreboard")
    before = scrape(asgi)
    asgi("GET", "/api/scoreboard")
    asgi("GET", "/api/scoreboard")
    local_board_invalidate()
    asgi("GET", "/api/scoreboard")
    moved = Moved(before, scrape(asgi))
    cache = "scoreboard_leaderboard_cache_total"
    assert moved(cache, layer="process", result="hit") == 2
    assert moved(cache, layer="process", result="miss") == 1
    # With Redis the miss was answered by the cached top-10 JSON there.
    assert moved(cache, layer="redis", result="hit") == (1 if settings.REDIS_URL else 0)


def test_orm_statements_are_timed_one_by_one(asgi, make_user):
    from accounts.models import User

    make_user()
    before = scrape(asgi)
    assert User.objects.count() >= 1
    list(User.objects.all()[:1])
    moved = Moved(before, scrape(asgi))
    assert moved("scoreboard_db_query_duration_seconds_count", source="orm", operation="SELECT") == 2


@pytest.mark.postgres
def test_the_group_commit_statement_is_timed(asgi, make_user, login, action_types):
    token = login(make_user())["access"]
    before = scrape(asgi)
    action = {"action_id": str(uuid.uuid4()), "action_type": "quest", "points": 3}
    assert post_json(asgi, "/api/scores", action, token).status_code == 200
    moved = Moved(before, scrape(asgi))
    timed = "scoreboard_db_query_duration_seconds_count"
    assert moved(timed, source="group_commit", operation="credit_batch") == 1


@shared_task(name="scoreboard_project.tests.fails")
def fails() -> None:
    raise RuntimeError("this task fails")


@shared_task(bind=True, name="scoreboard_project.tests.retries", max_retries=1)
def retries(self) -> None:
    raise self.retry(countdown=0, exc=RuntimeError("again"))


def test_celery_outcomes_and_flags_are_counted(asgi):
    from antifraud.tasks import bans_restore

    before = scrape(asgi)
    bans_restore.apply()
    fails.apply(throw=False)
    with pytest.raises(RuntimeError):  # the eager retry runs again at once, and gives up
        retries.apply(throw=False)
    metrics.flag_raised("velocity", "shadow")
    moved = Moved(before, scrape(asgi))
    tasks = "scoreboard_celery_tasks_total"
    assert moved(tasks, task="antifraud.tasks.bans_restore", outcome="success") == 1
    assert moved(tasks, task="scoreboard_project.tests.fails", outcome="failure") == 1
    assert moved(tasks, task="scoreboard_project.tests.retries", outcome="retry") == 1
    assert moved("scoreboard_flags_raised_total", rule="velocity", mode="shadow") == 1


# Protection: loopback by default, else an allowed network or the token.
def test_metrics_are_refused_to_other_addresses_without_the_token(api, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789-abcdefghij"
    response = api.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False and body["error_code"] == "FORBIDDEN" and body["message"]
    wrong = api.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer metrics-token-wrong")
    assert wrong.status_code == 403
    spoofed = api.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert spoofed.status_code == 403, "X-Forwarded-For counts only from TRUSTED_PROXIES"


def test_metrics_are_served_with_the_token_or_from_an_allowed_network(api, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789-abcdefghij"
    with_token = api.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}"
    )
    assert with_token.status_code == 200
    assert b"scoreboard_http_requests_total" in with_token.content
    settings.METRICS_ALLOWED_IPS = ["203.0.113.0/24"]
    assert api.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_without_a_token_configured_no_bearer_value_opens_metrics(api, settings):
    settings.METRICS_TOKEN = ""
    response = api.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


# Several processes (uvicorn --workers N): their increments meet in one scrape.
CHILD = """
import os, sys
import django
django.setup()
from scoreboard_project import metrics
for _ in range(int(sys.argv[1])):
    metrics.flag_raised("multiprocess", "enforce")
metrics.WS_CONNECTIONS.inc(int(sys.argv[2]))
print("ready", flush=True)
if sys.argv[3] == "wait":
    sys.stdin.readline()
"""
SCRAPE = """
import django
django.setup()
from scoreboard_project import metrics
print(metrics.metrics_text().decode())
"""


def child_env(directory: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scoreboard_project.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_SECRET": settings.JWT_SECRET,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }


def scrape_directory(directory: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE], cwd=ROOT, env=child_env(directory), capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return samples(done.stdout.decode())


def test_two_processes_increments_meet_in_one_scrape(tmp_path):
    env = child_env(tmp_path)
    staying = subprocess.Popen(
        [sys.executable, "-c", CHILD, "3", "2", "wait"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert staying.stdout.readline().strip() == b"ready"
        gone = subprocess.run(
            [sys.executable, "-c", CHILD, "4", "1", "exit"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert gone.returncode == 0, gone.stderr.decode()
        scraped = scrape_directory(tmp_path)
        flags = ("scoreboard_flags_raised_total", frozenset({("rule", "multiprocess"), ("mode", "enforce")}))
        assert scraped[flags] == 7, "3 from one process, 4 from the other"
        # The open-connection gauge counts live processes only: the one that exited is forgotten.
        assert scraped[("scoreboard_ws_connections", frozenset())] == 2
    finally:
        staying.communicate(b"\n", timeout=30)
    scraped = scrape_directory(tmp_path)
    assert scraped[flags] == 7, "counters of finished processes stay: totals never go back"
    assert scraped.get(("scoreboard_ws_connections", frozenset()), 0) == 0


def readyz_counts_by_process(directory: Path) -> dict[str, float]:
    """Each worker's own count of GET /readyz, read from its file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts = {}
    for path in directory.glob("counter_*.db"):
        for key, count, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if name == "scoreboard_http_requests_total" and labels.get("route") == "/readyz":
                counts[path.stem.split("_")[1]] = count
    return counts


@pytest.mark.postgres
@pytest.mark.redis
def test_a_scrape_of_two_uvicorn_workers_reports_both(tmp_path):
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from leaderboard.tests.browser import database_url_for, free_port

    directory = tmp_path / "prometheus"
    port = free_port()
    env = {
        **child_env(directory),
        "DB_CONNECTION_STRING": database_url_for(connection.settings_dict["NAME"]),
    }
    command = [
        sys.executable, "-m", "uvicorn", "scoreboard_project.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "scoreboard_project.protocol:HotHttpToolsProtocol", "--no-access-log",
    ]  # fmt: skip
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def get(path: str) -> bytes:
        with urllib.request.urlopen(url + path, timeout=5) as response:
            return response.read()

    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("Application startup complete") < 2:  # both workers serve
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        # /readyz waits on PostgreSQL and Redis: requests overlap, and both workers take some.
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda _: get("/readyz"), range(200)))
        per_process = readyz_counts_by_process(directory)
        assert sum(per_process.values()) == 200
        assert len([count for count in per_process.values() if count > 0]) == 2, per_process
        for _ in range(4):  # whichever worker answers the scrape reports both
            scraped = samples(get("/metrics").decode())
            readyz = (
                "scoreboard_http_requests_total",
                frozenset({("method", "GET"), ("route", "/readyz"), ("status", "200")}),
            )
            assert scraped[readyz] == 200
        # --no-access-log holds: the project's logging must not turn access lines back on (a
        # line per request halved the throughput of the hot path once).
        assert "GET /readyz HTTP/1.1" not in log.read_text()
    finally:
        server.terminate()
        server.wait(20)
