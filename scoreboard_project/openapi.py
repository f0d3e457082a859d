"""The OpenAPI document's shared parts: the error responses of API.md section 5, their
headers and examples, and a postprocessing hook that completes the document (the error-code
list, the WebSocket messages of section 3, the tags).

Views declare which errors they can answer with `error_responses(...)` and the matching
headers with `error_headers(...)`; `scoreboard_project/tests/test_openapi.py` checks the
result against API.md, and `test_schemathesis.py` checks the live server against it.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from scoreboard_project.fields import ErrorOutput

# status -> (description, [(error_code, example message, retry_after or None, details or None)])
ERRORS: dict[int, tuple[str, list[tuple[str, str, int | None, dict | None]]]] = {
    400: (
        "INVALID_ACTION: malformed JSON, a missing or ill-typed field, a bad UUID, an unknown or "
        "disabled action type, points out of bounds, a timestamp outside the allowed skew.",
        [
            (
                "INVALID_ACTION",
                "points: must be between 1 and 100 for action type 'quest'",
                None,
                {"points": "must be between 1 and 100 for action type 'quest'"},
            )
        ],
    ),
    401: (
        "UNAUTHORIZED: no token, or a malformed, forged, expired, revoked or wrong-type one "
        "(a refresh token used as an access token). Carries `WWW-Authenticate: Bearer`.",
        [("UNAUTHORIZED", "The token has expired.", None, None)],
    ),
    403: (
        "FORBIDDEN: authenticated but not allowed (inactive account, blocked address, bad client "
        "signature, closed registration, a player's token on a service endpoint); or "
        "ACCOUNT_SUSPENDED: a temporary ban is in force, with `retry_after`.",
        [
            ("FORBIDDEN", "The client signature does not match.", None, None),
            ("ACCOUNT_SUSPENDED", "This account is suspended.", 300, None),
        ],
    ),
    404: ("NOT_FOUND: no such path or resource.", [("NOT_FOUND", "No such path: /api/nowhere", None, None)]),
    405: (
        "METHOD_NOT_ALLOWED: the path exists, the method does not (see the `Allow` header).",
        [("METHOD_NOT_ALLOWED", "Method not allowed.", None, None)],
    ),
    409: (
        "DUPLICATE_ACTION: the `action_id` was used before with a different body or by another "
        "user; nothing changed.",
        [("DUPLICATE_ACTION", "This action_id was already used for a different action.", None, None)],
    ),
    413: (
        "PAYLOAD_TOO_LARGE: the body is over 16 KiB (256 KiB for a batch).",
        [("PAYLOAD_TOO_LARGE", "The body is larger than 16 KiB.", None, None)],
    ),
    429: (
        "RATE_LIMIT_EXCEEDED: a per-user, per-address or global limit; wait `retry_after` seconds "
        "(also in `Retry-After`).",
        [("RATE_LIMIT_EXCEEDED", "Too many requests.", 42, None)],
    ),
    503: (
        "SERVICE_UNAVAILABLE: the database (or a dependency) is unreachable; nothing was written.",
        [
            (
                "SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable; nothing was written.",
                5,
                None,
            )
        ],
    ),
}

# The statuses of API.md section 5, in its order, and their names in components.responses.
API_ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 413, 429, 503)
RESPONSE_NAMES = {
    400: "InvalidAction",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "DuplicateAction",
    413: "PayloadTooLarge",
    429: "RateLimitExceeded",
    503: "ServiceUnavailable",
}


def _example(status: int, code: str, message: str, retry_after: int | None, details: dict | None):
    value: dict = {"success": False, "error_code": code, "message": message}
    if retry_after is not None:
        value["retry_after"] = retry_after
    if details:
        value["details"] = details
    return OpenApiExample(
        code.lower().replace("_", " "), value=value, response_only=True, status_codes=[str(status)]
    )


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses` entries in the error shape, with one example per error code."""
    return {
        status: OpenApiResponse(
            ErrorOutput,
            description=ERRORS[status][0],
            examples=[_example(status, *example) for example in ERRORS[status][1]],
        )
        for status in statuses
    }


def error_headers(*statuses: int) -> list[OpenApiParameter]:
    """Response headers of those errors: `WWW-Authenticate` on 401, `Retry-After` where
    waiting helps (429 always, 403 and 503 when the body has `retry_after`)."""
    headers = []
    if 401 in statuses:
        headers.append(
            OpenApiParameter(
                "WWW-Authenticate",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[401],
                required=True,
                enum=["Bearer"],
                description="Always `Bearer`.",
            )
        )
    if 429 in statuses:
        headers.append(
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[429],
                required=True,
                description="Seconds to wait; equals the body's `retry_after`.",
            )
        )
    waiting = [status for status in (403, 503) if status in statuses]
    if waiting:
        headers.append(
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=waiting,
                description="Seconds to wait, when the body has `retry_after` (a ban, an outage).",
            )
        )
    return headers


DESCRIPTION = """\
The live scoreboard's HTTP API: score updates, the top-10 scoreboard, accounts and tokens,
health. JSON in, JSON out; every error has the shape of `Error` below.

**Authentication.** `Authorization: Bearer <access token>` from `POST /api/auth/token`
(HS256 JWT with `user_id` and `sid` claims, lifetime `expires_in` seconds). Every 401 carries
`WWW-Authenticate: Bearer`. In this page, *Authorize* takes the bare access token.

**Errors** (every endpoint, every status): `{"success": false, "error_code": "...",
"message": "...", "retry_after": 42, "details": {"field": "problem"}}`; `retry_after` (with a
`Retry-After` header) appears where waiting helps. Codes: 400 `INVALID_ACTION`,
401 `UNAUTHORIZED`, 403 `FORBIDDEN` / `ACCOUNT_SUSPENDED`, 404 `NOT_FOUND`,
405 `METHOD_NOT_ALLOWED`, 409 `DUPLICATE_ACTION`, 413 `PAYLOAD_TOO_LARGE`,
429 `RATE_LIMIT_EXCEEDED`, 503 `SERVICE_UNAVAILABLE`. Any path not listed here answers
404 `NOT_FOUND`, any method a path does not list answers 405 `METHOD_NOT_ALLOWED`, in that
shape, whatever the `Accept` header says. Bodies are limited to 16 KiB (413).

**Live updates: WebSocket `/ws/scoreboard`** (OpenAPI 3.0 has no WebSocket operations; the
messages are the `Ws*` schemas below). Authenticate with the `Authorization: Bearer` header,
or `?ticket=` from `POST /api/auth/ws-ticket` (browsers; single use, 30 s), or none where
the operator set `WS_ALLOW_ANONYMOUS=true`. A refused connection is accepted, then closed
with `4401` (not authenticated, session revoked), `4403` (banned, foreign origin) or `4429`
(too many connections). The first message is a `LEADERBOARD_UPDATE` snapshot; then
`LEADERBOARD_UPDATE` when the top 10 changes (coalesced) and `SCORE_UPDATE` to the player
whose score changed, each with a `seq` increasing per type on the connection. The client may
send `{"type": "PING"}` (answered `PONG`), or `{"type": "SUBSCRIBE", "board": "<code>"}` to
follow one more board besides the global one (answered by that board's snapshot, then its
coalesced updates, each naming it in `data.board`; an unknown board gets an `ERROR`
`NOT_FOUND`; `"global"` goes back to the global board alone); anything else gets an `ERROR`;
a frame over 4 KiB closes the socket with `1009`.
"""

TAGS = [
    {"name": "scores", "description": "Score updates (API.md section 1)."},
    {"name": "scoreboard", "description": "The top 10 (API.md section 2)."},
    {"name": "auth", "description": "Accounts and tokens (API.md section 4)."},
    {"name": "health", "description": "Liveness and readiness (API.md section 6)."},
    {"name": "boards", "description": "Every board: pages, around-me, one player, periods."},
]

_ENTRY = {"$ref": "#/components/schemas/BoardEntryOutput"}
WS_MESSAGES = {
    "WsLeaderboardUpdate": {
        "type": "object",
        "description": "Server to client: the board changed (and the snapshot opening every connection).",
        "properties": {
            "type": {"type": "string", "enum": ["LEADERBOARD_UPDATE"]},
            "seq": {"type": "integer"},
            "data": {
                "type": "object",
                "properties": {
                    "board": {
                        "type": "string",
                        "description": "The board followed by SUBSCRIBE; absent on the global board's broadcasts.",
                    },
                    "leaderboard": {"type": "array", "items": _ENTRY, "maxItems": 10},
                    "changed_ranks": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    "timestamp": {"type": "string", "format": "date-time"},
                },
                "required": ["leaderboard", "changed_ranks", "timestamp"],
            },
        },
        "required": ["type", "seq", "data"],
        "example": {
            "type": "LEADERBOARD_UPDATE",
            "seq": 118,
            "data": {
                "leaderboard": [
                    {
                        "rank": 1,
                        "user_id": 7,
                        "username": "ada",
                        "score": 9100,
                        "last_updated": "2026-11-29T12:00:00.123456Z",
                    }
                ],
                "changed_ranks": [1],
                "timestamp": "2026-11-29T12:00:00.123456Z",
            },
        },
    },
    "WsScoreUpdate": {
        "type": "object",
        "description": "Server to client, only to the sockets of the player whose score changed.",
        "properties": {
            "type": {"type": "string", "enum": ["SCORE_UPDATE"]},
            "seq": {"type": "integer"},
            "data": {
                "type": "object",
                "properties": {
                    "new_score": {"type": "integer"},
                    "rank": {"type": "integer"},
                    "points_gained": {"type": "integer"},
                },
                "required": ["new_score", "rank", "points_gained"],
            },
        },
        "required": ["type", "seq", "data"],
        "example": {
            "type": "SCORE_UPDATE",
            "seq": 119,
            "data": {"new_score": 1530, "rank": 7, "points_gained": 10},
        },
    },
    "WsPing": {
        "type": "object",
        "description": "Client to server (the server also pings every WS_HEARTBEAT_INTERVAL seconds).",
        "properties": {"type": {"type": "string", "enum": ["PING"]}},
        "required": ["type"],
        "example": {"type": "PING"},
    },
    "WsSubscribe": {
        "type": "object",
        "description": 'Client to server: follow this board too (one at a time; "global": only the global board).',
        "properties": {"type": {"type": "string", "enum": ["SUBSCRIBE"]}, "board": {"type": "string"}},
        "required": ["type", "board"],
        "example": {"type": "SUBSCRIBE", "board": "weekly"},
    },
    "WsPong": {
        "type": "object",
        "description": "Server to client, the answer to PING.",
        "properties": {"type": {"type": "string", "enum": ["PONG"]}},
        "required": ["type"],
        "example": {"type": "PONG"},
    },
    "WsError": {
        "type": "object",
        "description": "Server to client, the answer to any other client message.",
        "properties": {
            "type": {"type": "string", "enum": ["ERROR"]},
            "data": {
                "type": "object",
                "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["error_code", "message"],
            },
        },
        "required": ["type", "data"],
        "example": {
            "type": "ERROR",
            "data": {"error_code": "INVALID_MESSAGE", "message": "Unknown message type."},
        },
    },
}


def error_codes() -> list[str]:
    """Every `error_code` the service can answer: one per ApiError class, found when the
    schema is generated, so a new error class is documented without further edits."""
    from scoreboard_project.errors import ApiError

    codes: list[str] = []
    pending = [ApiError]
    while pending:
        cls = pending.pop(0)
        if cls.code not in codes:
            codes.append(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def postprocess(result, generator, request, public):
    """POSTPROCESSING_HOOKS: the description and tags, the complete error shape, the
    WebSocket messages."""
    result["info"]["description"] = DESCRIPTION
    result["tags"] = TAGS
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    error = schemas.get("Error")
    if error is not None:
        error["properties"]["success"] = {"type": "boolean", "enum": [False]}
        error["properties"]["error_code"] = {
            "type": "string",
            "enum": error_codes(),
            "description": "Stable, machine-readable; see the table in the description.",
        }
        error["required"] = ["success", "error_code", "message"]
    batch = schemas.get("BatchInputRequest")
    if batch is not None:
        # Each item of a batch is judged on its own (a bad one is answered in `results`), so
        # any JSON value is a valid item; BatchItemInput says what a creditable one looks like.
        actions = batch["properties"]["actions"]
        actions["items"] = {"anyOf": [actions["items"], {}]}
        actions["minItems"], actions["maxItems"] = 1, settings.BATCH_MAX_ACTIONS
    # Every status of API.md section 5 as a reusable response, 404 and 405 included (they
    # answer any path or method the document does not list).
    responses = result["components"].setdefault("responses", {})
    for status in API_ERROR_STATUSES:
        description, examples = ERRORS[status]
        responses[RESPONSE_NAMES[status]] = {
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "examples": {
                        code: {"summary": code, "value": _example(status, code, *rest).value}
                        for code, *rest in examples
                    },
                }
            },
        }
    for name, schema in WS_MESSAGES.items():
        schemas.setdefault(name, schema)
    return result
