"""Prometheus metrics of the service and GET /metrics (README, "Operating: metrics and logs").

Every update is in process: a counter or histogram in memory, or, with
PROMETHEUS_MULTIPROC_DIR set (several server processes), in a memory-mapped file of that
directory, which a scrape of any process reads for all of them. Children of labelled
metrics are looked up once and kept, so the hot path pays a dict lookup per update.
"""

from __future__ import annotations

import glob
import hmac
import json
import logging
import os
import time
from functools import lru_cache
from ipaddress import ip_address, ip_network

from django.conf import settings

# Settings put PROMETHEUS_MULTIPROC_DIR in the environment, where prometheus_client looks for
# it when it is first imported (just below): it decides there between memory and files.
MULTIPROC_DIR = settings.PROMETHEUS_MULTIPROC_DIR
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

logger = logging.getLogger("scoreboard.requests")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCORE_ROUTE = "/api/scores"

HTTP_REQUESTS = Counter(
    "scoreboard_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "scoreboard_http_request_duration_seconds",
    "Time from the request's arrival to its answer, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
SCORE_UPDATES = Counter(
    "scoreboard_score_updates_total",
    "Score updates (single and batch items) by outcome: accepted, replayed, held, rejected; "
    "reason is the error_code of a rejection.",
    ["outcome", "reason"],
)
WS_CONNECTIONS = Gauge(
    "scoreboard_ws_connections",
    "Open WebSocket connections (of live processes).",
    multiprocess_mode="livesum",
)
WS_CONNECTS = Counter(
    "scoreboard_ws_connects_total",
    "WebSocket connection attempts by result: accepted, or the close code of a refusal.",
    ["result"],
)
WS_MESSAGES = Counter(
    "scoreboard_ws_messages_sent_total", "Messages written to WebSocket peers, by type.", ["type"]
)
LEADERBOARD_CACHE = Counter(
    "scoreboard_leaderboard_cache_total",
    "Top-10 reads by cache layer (process: the in-memory copy; redis: the cached JSON) and "
    "result (hit, miss; error: Redis failed and the database answered).",
    ["layer", "result"],
)
DB_QUERY = Histogram(
    "scoreboard_db_query_duration_seconds",
    "Database statement time: source orm (Django) or group_commit (the hot path's credit "
    "statement), by operation.",
    ["source", "operation"],
    buckets=QUERY_BUCKETS,
)
RATE_LIMIT_REFUSALS = Counter(
    "scoreboard_rate_limit_refusals_total",
    "Score updates refused by the rate limits, by verdict (user, global, suspended, banned).",
    ["verdict"],
)
CELERY_TASKS = Counter(
    "scoreboard_celery_tasks_total", "Celery task outcomes: success, failure, retry.", ["task", "outcome"]
)
FLAGS_RAISED = Counter(
    "scoreboard_flags_raised_total", "Anti-fraud flags raised, by rule and mode.", ["rule", "mode"]
)

BOARD_PROCESS_HIT = LEADERBOARD_CACHE.labels("process", "hit")
BOARD_PROCESS_MISS = LEADERBOARD_CACHE.labels("process", "miss")
BOARD_REDIS_HIT = LEADERBOARD_CACHE.labels("redis", "hit")
BOARD_REDIS_MISS = LEADERBOARD_CACHE.labels("redis", "miss")
BOARD_REDIS_ERROR = LEADERBOARD_CACHE.labels("redis", "error")
GROUP_COMMIT_QUERY = DB_QUERY.labels("group_commit", "credit_batch")
GROUP_COMMIT_ALONE_QUERY = DB_QUERY.labels("group_commit", "credit_alone")
WS_BOARD_SENT = WS_MESSAGES.labels("LEADERBOARD_UPDATE")
WS_SCORE_SENT = WS_MESSAGES.labels("SCORE_UPDATE")
WS_PING_SENT = WS_MESSAGES.labels("PING")
WS_PONG_SENT = WS_MESSAGES.labels("PONG")
WS_ERROR_SENT = WS_MESSAGES.labels("ERROR")

_http_children: dict[tuple[str, str, int], tuple] = {}
_outcome_children: dict[tuple[str, str], object] = {}


def http_observed(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    key = (method, route, status)
    children = _http_children.get(key)
    if children is None:
        label = method if method in METHODS else "OTHER"
        children = (HTTP_REQUESTS.labels(label, route, str(status)), HTTP_LATENCY.labels(label, route))
        if method in METHODS:
            _http_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def score_counted(outcome: str, reason: str = "", amount: int = 1) -> None:
    key = (outcome, reason)
    child = _outcome_children.get(key)
    if child is None:
        child = _outcome_children[key] = SCORE_UPDATES.labels(outcome, reason)
    child.inc(amount)


def score_outcome(status: int, *, replayed: bool) -> str:
    """Classify one answered score update: accepted, replayed, held or rejected."""
    if replayed:
        return "replayed"
    if status == 200:
        return "accepted"
    if status == 202:
        return "held"
    return "rejected"


def error_code_of(body: bytes) -> str:
    """The error_code of an error body in the API's shape ("UNKNOWN" if there is none)."""
    try:
        code = json.loads(body).get("error_code")
    except (ValueError, AttributeError):
        return "UNKNOWN"
    return code if isinstance(code, str) and len(code) <= 40 else "UNKNOWN"


def response_observed(
    method: str,
    route: str,
    status: int,
    started: float,
    *,
    body: bytes,
    replayed: bool,
    client_ip,
) -> None:
    """A door answered a request: metrics, and the log lines of failed authentications and
    of score updates that were not plainly accepted (the service logs those)."""
    http_observed(method, route, status, time.perf_counter() - started)
    if status == 401:
        logger.info(
            "authentication failed on %s %s",
            method,
            route,
            extra={
                "event": "auth_failed",
                "route": route,
                "reason": _message_of(body),
                "client_ip": client_ip(),
            },
        )
    if method == "POST" and route == SCORE_ROUTE:
        outcome = score_outcome(status, replayed=replayed)
        reason = error_code_of(body) if outcome == "rejected" else ""
        score_counted(outcome, reason)
        if outcome != "accepted":
            logger.info(
                "score update %s",
                outcome,
                extra={"event": "score_update", "outcome": outcome, "status": status, "reason": reason},
            )


REPLAYED_HEADER = (b"idempotent-replayed", b"true")


def hot_response_observed(scope, response, started: float) -> None:
    """`response_observed` for the lean ASGI door (exact paths, or templates of routes with
    parameters)."""

    def client_ip() -> str | None:
        from scoreboard_project.hotpath import HotRequest

        return HotRequest(scope, b"").client_ip()

    status = response.status
    response_observed(
        scope["method"],
        # A route with parameters names its template (set by its handler), not the path.
        scope.get("route_template") or scope["path"],
        status,
        started,
        body=response.body if status >= 400 else b"",
        replayed=REPLAYED_HEADER in response.headers,
        client_ip=client_ip,
    )


def _message_of(body: bytes) -> str:
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        return ""
    return message if isinstance(message, str) else ""


def batch_observed(answers: list[dict]) -> None:
    """Count the items of a batch by outcome."""
    counts: dict[tuple[str, str], int] = {}
    for answer in answers:
        status = answer.get("status", 0)
        outcome = score_outcome(status, replayed=bool(answer.get("replayed")))
        key = (outcome, answer.get("error_code", "") if outcome == "rejected" else "")
        counts[key] = counts.get(key, 0) + 1
    for (outcome, reason), amount in counts.items():
        score_counted(outcome, reason, amount)


def rate_limit_refused(verdict: str) -> None:
    RATE_LIMIT_REFUSALS.labels(verdict).inc()


def flag_raised(rule: str, mode: str) -> None:
    """An anti-fraud flag was raised by `rule` in `mode` (call after the flag is stored)."""
    FLAGS_RAISED.labels(rule, mode).inc()


def ws_connect_counted(result: str) -> None:
    WS_CONNECTS.labels(result).inc()


# Database time of the ORM: installed on every connection Django opens (apps.py).
def _operation(sql: str) -> str:
    head = sql.lstrip()[:6].upper()
    return head if head in ("SELECT", "INSERT", "UPDATE", "DELETE") else "OTHER"


_orm_children = {
    name: DB_QUERY.labels("orm", name) for name in ("SELECT", "INSERT", "UPDATE", "DELETE", "OTHER")
}


def orm_query_timer(execute, sql, params, many, context):
    """A Django execute wrapper: time each ORM statement."""
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _orm_children[_operation(str(sql))].observe(time.perf_counter() - started)


def install_query_timer(sender, connection, **kwargs) -> None:
    """connection_created receiver; a connection wrapper survives reconnects, so once."""
    if orm_query_timer not in connection.execute_wrappers:
        connection.execute_wrappers.append(orm_query_timer)


# Celery task outcomes (signals connected in apps.py).
def task_succeeded(sender=None, **kwargs) -> None:
    CELERY_TASKS.labels(getattr(sender, "name", "unknown"), "success").inc()


def task_failed(sender=None, **kwargs) -> None:
    CELERY_TASKS.labels(getattr(sender, "name", "unknown"), "failure").inc()


def task_retried(sender=None, **kwargs) -> None:
    CELERY_TASKS.labels(getattr(sender, "name", "unknown"), "retry").inc()


# GET /metrics.
def sweep_dead_processes(directory: str = MULTIPROC_DIR) -> None:
    """Forget the open-connection gauges of processes that are gone (a worker restarted by
    the server); their counters stay, so totals never go backwards."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = path.rsplit("_", 1)[1][:-3]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def metrics_text() -> bytes:
    """Every metric in the Prometheus text format: all processes' with PROMETHEUS_MULTIPROC_DIR."""
    if not MULTIPROC_DIR:
        return generate_latest(REGISTRY)
    sweep_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]):
    return tuple(ip_network(entry, strict=False) for entry in allowed)


def metrics_allowed(*, client_ip: str | None, authorization: str) -> bool:
    """A scrape is allowed from METRICS_ALLOWED_IPS, or with `Bearer <METRICS_TOKEN>`."""
    token = settings.METRICS_TOKEN
    if token and authorization:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    if not client_ip:
        return False
    try:
        address = ip_address(client_ip)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_IPS)))


def metrics_view(request):
    """GET /metrics (API.md section 6): 403 in the API's shape unless allowed."""
    from django.http import HttpResponse

    from scoreboard_project.clientip import ip_or_none, request_client_address
    from scoreboard_project.errors import Forbidden, MethodNotAllowed, error_response

    if request.method not in ("GET", "HEAD"):
        return error_response(MethodNotAllowed())
    allowed = metrics_allowed(
        client_ip=ip_or_none(request_client_address(request)),
        authorization=request.headers.get("Authorization", ""),
    )
    if not allowed:
        return error_response(Forbidden("Metrics are served to allowed addresses or with the metrics token."))
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
