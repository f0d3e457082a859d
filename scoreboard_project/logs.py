"""Request ids and the log formats: one JSON object per line (LOG_FORMAT=json) or text.

A request id lives in a context variable set by the hot-path router, the Django middleware
and the WebSocket consumer, and a logging filter puts it on every record. The variable holds
a one-item list that is emptied when the request ends: tasks started during a request (a
pool's runner, a board refresh) copy the context, and would otherwise carry a finished
request's id into every later line.
"""

from __future__ import annotations

import json
import logging
import re
import time
from contextlib import suppress
from contextvars import ContextVar, Token

from scoreboard_project.ids import random_hex32

# A line is logged per score update: skip gathering what no formatter here prints (the
# calling frame, thread and process names), as the logging HOWTO's "Optimization" section
# suggests; 2 of the 13 us a line costs.
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept if it is short and made of safe characters; else a new one is made.
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
_current: ContextVar[list[str | None] | None] = ContextVar("request_id", default=None)


class RequestId:
    """The id of one request (or WebSocket connection), current until `finish()`."""

    __slots__ = ("value", "holder", "token")

    def __init__(self, value: str, holder: list[str | None], token: Token) -> None:
        self.value = value
        self.holder = holder
        self.token = token

    def finish(self) -> None:
        self.holder[0] = None
        # Finished from another context (ValueError), the emptied holder is enough.
        with suppress(ValueError):
            _current.reset(self.token)


def request_id_start(incoming: str | bytes | None = None) -> RequestId:
    """Make `incoming` (validated) or a new id the current request id."""
    if isinstance(incoming, bytes):
        incoming = incoming.decode("latin-1")
    value = incoming if incoming and _VALID_ID.fullmatch(incoming) else random_hex32()
    holder: list[str | None] = [value]
    return RequestId(value, holder, _current.set(holder))


def request_id() -> str | None:
    """The current request's id, or None outside a request."""
    holder = _current.get()
    return holder[0] if holder is not None else None


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record (`request_id`, None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id()
        return True


# What a LogRecord carries by itself; everything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


def extra_fields(record: logging.LogRecord) -> dict:
    known = record.__dict__.get(FIELDS)
    if known is not None:  # a record of `info_line`: its extras, without a scan
        return known
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


# A record made by `info_line` names its extra fields here (and carries them as attributes
# too, as `extra=` would).
FIELDS = "_fields"
_STANDARD.add(FIELDS)
# What LogRecord.__init__ sets that does not change from one line to the next, as
# `logger.info` makes it with the logging flags above (no caller frame, thread or process).
_CONSTANT = {
    key: value
    for key, value in vars(
        logging.LogRecord("", logging.INFO, "(unknown file)", 0, "", (), None, "(unknown function)")
    ).items()
    if key not in ("name", "msg", "args", "created", "msecs", "relativeCreated")
}


def info_line(logger: logging.Logger, msg: str, args: tuple, fields: dict) -> None:
    """`logger.info(msg, *args, extra=fields)` for a line logged on every request: the same
    record (every attribute LogRecord sets, the extras as attributes), filters, handlers and
    formatters, without LogRecord's constructor and with the extras named for the formatter
    (13 us a line, a tenth of a credit's CPU in the worker, before this)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    created = time.time()
    record = logging.LogRecord.__new__(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(_CONSTANT)
    attributes["name"] = logger.name
    attributes["msg"] = msg
    attributes["args"] = args
    attributes["created"] = created
    attributes["msecs"] = int((created - int(created)) * 1000) + 0.0
    attributes["relativeCreated"] = (created - logging._startTime) * 1000
    attributes.update(fields)
    attributes[FIELDS] = fields
    logger.handle(record)


_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode
_second: tuple[int, str] = (-1, "")


def utc_timestamp(created: float) -> str:
    """`created` as 2026-11-30T03:11:25.123456Z; the second's text is made once a second
    (a log line per score update: strftime each time would be a fifth of the line's cost)."""
    global _second
    whole, micro = divmod(round(created * 1_000_000), 1_000_000)
    second, text = _second
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{micro:06d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        identifier = getattr(record, "request_id", None)
        if identifier is not None:
            entry["request_id"] = identifier
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return _encode(entry)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message key=value ...` for a developer's terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        identifier = getattr(record, "request_id", None)
        fields = extra_fields(record)
        text = self._fmt % {**vars(record), "request_tag": f" [{identifier}]" if identifier else ""}
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def score_log_fields(user_id: int, action, credit, outcome: str) -> dict:
    """The structured fields of a score update's log line (`extra=`)."""
    reached_at = getattr(credit, "reached_at", None)
    return {
        "event": "score_update",
        "outcome": outcome,
        "user_id": user_id,
        "action_id": action.action_id,
        "action_type": action.action_type,
        "points": action.points,
        "total": getattr(credit, "total", None),
        "credited_at": reached_at.isoformat() if reached_at is not None else None,
    }
