"""Score-update rate limits: sliding windows per player and for everyone, in Redis.

RATE_LIMIT_PER_USER updates per RATE_LIMIT_WINDOW seconds for each player, and
RATE_LIMIT_GLOBAL for all players together: no more than the limit is ever accepted in ANY
window of that length (a sliding log of accepted requests, not fixed buckets), across all
server processes. The check shares its Redis round trip with the session check, and
concurrent requests share one call of the script. Without Redis each process keeps its own
logs (the embedded default is one process).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from django.conf import settings

from scoreboard_project import aio, metrics
from scoreboard_project.errors import AccountSuspended, ApiError, RateLimited, Unauthorized
from scoreboard_project.redis import RedisError

logger = logging.getLogger("scoreboard.ratelimit")

GLOBAL_KEY = "ratelimit:global"

# Per request: a ban in force refuses it at once; else the cached session entry, then
# (unless the session is not live in the cache and `trusted` is 0) the sliding windows. A
# refusal by the player's own window is a violation: PENALTY_VIOLATIONS of them within
# PENALTY_PERIOD ban the player for the next step of the ladder. Time is Redis's own clock,
# shared by all servers.
# KEYS: the global log. ARGV: window_ms, user_limit, global_limit, violations, period_ms,
# memory_ms, steps ("60000,300000,..."), then per request: sid, user_id, member, trusted.
# Returns per request {session or false, verdict, retry_ms, remaining, reset_ms}; verdict is
# ok, user, global, skip (session not live: nothing counted), suspended (a ban in force),
# banned (banned by this request; remaining carries the ladder's level).
ADMIT_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local window, user_limit, global_limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local needed, period, memory = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local steps = {}
for step in string.gmatch(ARGV[7], '%d+') do steps[#steps + 1] = tonumber(step) end
local global_key = KEYS[1]
local answers = {}
for i = 0, (#ARGV - 7) / 4 - 1 do
  local sid, user, member, trusted = ARGV[8 + i * 4], ARGV[9 + i * 4], ARGV[10 + i * 4], ARGV[11 + i * 4]
  local session = redis.call('GET', 'session:' .. sid)
  local banned_for = redis.call('PTTL', 'ban:' .. user)
  if banned_for > 0 then
    answers[#answers + 1] = {session or false, 'suspended', banned_for, 0, 0}
  elseif trusted ~= '1' and session ~= user then
    answers[#answers + 1] = {session or false, 'skip', 0, 0, 0}
  else
    local user_key = 'ratelimit:user:' .. user
    redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now - window)
    local used = redis.call('ZCARD', user_key)
    if used >= user_limit then
      local oldest = tonumber(redis.call('ZRANGE', user_key, 0, 0, 'WITHSCORES')[2])
      local violations_key = 'ratelimit:violations:' .. user
      local violations = redis.call('INCR', violations_key)
      if violations == 1 then redis.call('PEXPIRE', violations_key, period) end
      if violations >= needed then
        redis.call('DEL', violations_key)
        local level = redis.call('INCR', 'ban:level:' .. user)
        redis.call('PEXPIRE', 'ban:level:' .. user, memory)
        local step = steps[math.min(level, #steps)]
        redis.call('SET', 'ban:' .. user, level, 'PX', step)
        answers[#answers + 1] = {session or false, 'banned', step, level, 0}
      else
        answers[#answers + 1] = {session or false, 'user', oldest + window - now, 0, oldest + window - now}
      end
    else
      redis.call('ZREMRANGEBYSCORE', global_key, '-inf', now - window)
      if redis.call('ZCARD', global_key) >= global_limit then
        local oldest = tonumber(redis.call('ZRANGE', global_key, 0, 0, 'WITHSCORES')[2])
        answers[#answers + 1] = {session or false, 'global', oldest + window - now, user_limit - used, 0}
      else
        redis.call('ZADD', user_key, now, member)
        redis.call('PEXPIRE', user_key, window)
        redis.call('ZADD', global_key, now, member)
        redis.call('PEXPIRE', global_key, window)
        local oldest = tonumber(redis.call('ZRANGE', user_key, 0, 0, 'WITHSCORES')[2])
        answers[#answers + 1] = {session or false, 'ok', 0, user_limit - used - 1, oldest + window - now}
      end
    end
  end
end
return answers
"""


@dataclass(frozen=True, slots=True)
class Admission:
    """What the limits said about one request."""

    session: bytes | None  # the cached session entry, for the session check
    verdict: str  # ok, user, global, skip
    retry_ms: int = 0
    remaining: int = 0
    reset_ms: int = 0

    def headers(self) -> dict[str, str]:
        """The draft IETF RateLimit headers for the per-player policy."""
        reset = max(0, math.ceil(self.reset_ms / 1000))
        return {
            "RateLimit-Policy": f'"player";q={settings.RATE_LIMIT_PER_USER};w={settings.RATE_LIMIT_WINDOW}',
            "RateLimit": f'"player";r={max(0, self.remaining)};t={reset}',
        }

    def refusal(self) -> ApiError | None:
        if self.verdict in ("suspended", "banned"):
            return AccountSuspended(
                "This account is suspended for repeated rate-limit violations.",
                retry_after=max(1, self.retry_ms) / 1000,
            )
        if self.verdict not in ("user", "global"):
            return None
        whose = "this player's" if self.verdict == "user" else "the service's"
        error = RateLimited(
            f"Too many score updates: {whose} limit is reached.", retry_after=max(1, self.retry_ms) / 1000
        )
        error.extra_headers = self.headers()
        return error


_scripts: WeakKeyDictionary = WeakKeyDictionary()


async def _admit_many(requests: list[tuple[str, int, bool]]) -> list[Admission]:
    client = aio.async_redis()
    args: list = [
        settings.RATE_LIMIT_WINDOW * 1000,
        settings.RATE_LIMIT_PER_USER,
        settings.RATE_LIMIT_GLOBAL,
        settings.PENALTY_VIOLATIONS,
        settings.PENALTY_PERIOD * 1000,
        settings.PENALTY_MEMORY * 1000,
        ",".join(str(step * 1000) for step in settings.PENALTY_STEPS),
    ]
    for sid, user_id, trusted in requests:
        args += [sid, user_id, uuid.uuid4().hex, "1" if trusted else "0"]
    script = _scripts.get(client)
    if script is None:
        script = _scripts[client] = client.register_script(ADMIT_SCRIPT)
    answers = await script(keys=[GLOBAL_KEY], args=args)
    return [
        Admission(session or None, verdict.decode(), int(retry), int(remaining), int(reset))
        for session, verdict, retry, remaining, reset in answers
    ]


async def admit(*, sid: str, user_id: int, trusted: bool = False) -> Admission:
    """Check the session entry and count one score update against the limits.

    Unless `trusted` (the database has just said the session is live), nothing is counted
    when the cached session entry does not say live: the caller checks the database first.
    """
    if aio.async_redis() is None:
        return local_limits.admit(user_id)
    together = aio.loop_singleton("admissions", lambda: aio.Coalescer(_admit_many))
    return await together((sid, user_id, trusted))


class LocalLimits:
    """The same sliding windows in this process's memory (no Redis: one process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.players: dict[int, deque[float]] = {}
        self.everyone: deque[float] = deque()
        self.violations: dict[int, deque[float]] = {}
        self.levels: dict[int, tuple[int, float]] = {}  # user -> (level, remembered until)
        self.bans: dict[int, float] = {}  # user -> banned until
        self.warned = False

    def admit(self, user_id: int) -> Admission:
        if not self.warned:
            logger.warning("no Redis: score rate limits are counted per process")
            self.warned = True
        window = settings.RATE_LIMIT_WINDOW
        now = time.monotonic()
        with self.lock:
            banned_until = self.bans.get(user_id, 0.0)
            if banned_until > now:
                return Admission(None, "suspended", math.ceil((banned_until - now) * 1000))
            mine = self.players.setdefault(user_id, deque())
            for log in (mine, self.everyone):
                while log and log[0] <= now - window:
                    log.popleft()
            if len(mine) >= settings.RATE_LIMIT_PER_USER:
                retry = (mine[0] + window - now) * 1000
                return self._violation(user_id, now) or Admission(
                    None, "user", math.ceil(retry), 0, math.ceil(retry)
                )
            if len(self.everyone) >= settings.RATE_LIMIT_GLOBAL:
                retry = (self.everyone[0] + window - now) * 1000
                return Admission(
                    None, "global", math.ceil(retry), settings.RATE_LIMIT_PER_USER - len(mine), 0
                )
            mine.append(now)
            self.everyone.append(now)
            reset = (mine[0] + window - now) * 1000
            return Admission(None, "ok", 0, settings.RATE_LIMIT_PER_USER - len(mine), math.ceil(reset))

    def _violation(self, user_id: int, now: float) -> Admission | None:
        """Count a refusal; the one that completes PENALTY_VIOLATIONS bans (caller holds the lock)."""
        seen = self.violations.setdefault(user_id, deque())
        while seen and seen[0] <= now - settings.PENALTY_PERIOD:
            seen.popleft()
        seen.append(now)
        if len(seen) < settings.PENALTY_VIOLATIONS:
            return None
        seen.clear()
        level, remembered_until = self.levels.get(user_id, (0, 0.0))
        level = (level if remembered_until > now else 0) + 1
        self.levels[user_id] = (level, now + settings.PENALTY_MEMORY)
        step = settings.PENALTY_STEPS[min(level, len(settings.PENALTY_STEPS)) - 1]
        self.bans[user_id] = now + step
        return Admission(None, "banned", step * 1000, level)

    def ban(self, user_id: int, seconds: float) -> None:
        with self.lock:
            self.bans[user_id] = time.monotonic() + seconds

    def lift(self, user_id: int) -> None:
        with self.lock:
            self.bans.pop(user_id, None)

    def clear(self) -> None:
        with self.lock:
            self.players.clear()
            self.everyone.clear()
            self.violations.clear()
            self.levels.clear()
            self.bans.clear()


local_limits = LocalLimits()


async def admit_score_request(*, user_id: int, sid: str, session_checked: bool = False) -> Admission:
    """The door of POST /api/scores after the token: the session is live and the limits
    allow one more update (one Redis round trip when the session is cached), or raise.

    `session_checked`: the caller's authentication already asked about the session.
    """
    from accounts.sessions import session_is_live_async, session_load, session_state_from_cache

    async def session_live_in_database() -> bool:
        return await aio.db_call(session_load)(sid=sid, user_id=user_id, cache=True)

    admission = None
    if aio.async_redis() is not None:
        try:
            admission = await admit(sid=sid, user_id=user_id, trusted=session_checked)
            if admission.verdict == "skip":
                if session_state_from_cache(admission.session, user_id=user_id) is False:
                    raise Unauthorized("The session has ended.")
                # Not cached: the database decides (and fills the cache), then it is counted.
                if not await session_live_in_database():
                    raise Unauthorized("The session has ended.")
                admission = await admit(sid=sid, user_id=user_id, trusted=True)
        except RedisError as error:
            logger.error("redis unreachable (%s): rate limits counted in this process", error)
            admission = None
    if admission is None:
        if not session_checked and not await session_is_live_async(sid=sid, user_id=user_id):
            raise Unauthorized("The session has ended.")
        admission = local_limits.admit(user_id)
    refusal = admission.refusal()
    if refusal is not None:
        metrics.rate_limit_refused(admission.verdict)
        logger.warning(
            "rate limit: user=%s verdict=%s retry_ms=%s",
            user_id,
            admission.verdict,
            admission.retry_ms,
            extra={"event": "rate_limited", "user_id": user_id, "verdict": admission.verdict},
        )
        if admission.verdict == "banned":
            from antifraud.services import ban_record_automatic

            await aio.db_call(ban_record_automatic)(
                user_id=user_id, level=admission.remaining, seconds=admission.retry_ms / 1000
            )
        raise refusal
    return admission
