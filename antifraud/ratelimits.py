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
from collections import deque
from dataclasses import dataclass

from django.conf import settings

from accounts.sessions import session_is_live_async, session_load, session_state_from_cache
from antifraud.addresses import address_check
from antifraud.rules import ENFORCE, OFF, rule_states_async
from scoreboard_project import aio, metrics
from scoreboard_project.errors import AccountSuspended, ApiError, RateLimited, Unauthorized
from scoreboard_project.hotsettings import hot
from scoreboard_project.ids import random_hex16
from scoreboard_project.redis import LuaScript, RedisError

logger = logging.getLogger("scoreboard.ratelimit")

GLOBAL_KEY = "ratelimit:global"

# Redis's own clock (shared by all servers) and the velocity and gains accounting, shared by
# the admission script and the accounting of a game server's batch.
CLOCK_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local minute = math.floor(now / 60000)
"""
ACCOUNT_LUA = """
-- Running sums, so that no request walks the player's whole log: velocity (field 'v') is the
-- sum of the last minute's entries, their expired entries taken off it; gains (field 't') the
-- sum of the per-minute buckets, summed again from the buckets once per minute, when the old
-- ones are dropped (field 'm': the minute last seen). A hash without them (written by an
-- older version, or fresh) gets them from its log and buckets. Both keys live as long as
-- the gains period and are renewed together.
local function account(user, action_id, points, review_minutes)
  local velocity_key, gains_key = 'velocity:' .. user, 'gains:' .. user
  local ttl = review_minutes * 60000 + 60000
  local state = redis.call('HMGET', gains_key, 'm', 'v', 't', minute)
  local velocity = 0
  if state[2] then
    velocity = tonumber(state[2])
    local gone = redis.call('ZRANGEBYSCORE', velocity_key, '-inf', now - 60000)
    for _, member in ipairs(gone) do
      velocity = velocity - tonumber(string.match(member, ':(%d+)$'))
    end
    if #gone > 0 then redis.call('ZREMRANGEBYSCORE', velocity_key, '-inf', now - 60000) end
  else
    redis.call('ZREMRANGEBYSCORE', velocity_key, '-inf', now - 60000)
    for _, member in ipairs(redis.call('ZRANGE', velocity_key, 0, -1)) do
      velocity = velocity + tonumber(string.match(member, ':(%d+)$'))
    end
  end
  local counted = redis.call('ZADD', velocity_key, 'NX', now, action_id .. ':' .. points) == 1
    and tonumber(points) or 0
  redis.call('PEXPIRE', velocity_key, ttl)
  local gains = tonumber(state[3]) or 0
  local update = {}
  if tonumber(state[1]) ~= minute then
    local buckets = redis.call('HGETALL', gains_key)
    gains = 0
    for i = 1, #buckets, 2 do
      local bucket = tonumber(buckets[i])
      if bucket and bucket <= minute - review_minutes then
        redis.call('HDEL', gains_key, buckets[i])
      elseif bucket then
        gains = gains + tonumber(buckets[i + 1])
      end
    end
    update = {'m', minute}
  end
  velocity, gains = velocity + counted, gains + counted
  if counted > 0 then
    update[#update + 1] = minute
    update[#update + 1] = (tonumber(state[4]) or 0) + counted
  end
  redis.call('HSET', gains_key, 'v', velocity, 't', gains, unpack(update))
  redis.call('PEXPIRE', gains_key, ttl)
  return velocity, gains, velocity - counted, gains - counted
end
"""
# Per request: a ban in force refuses it at once; else the cached session entry, then
# (unless the session is not live in the cache and `trusted` is 0) the sliding windows. A
# refusal by the player's own window is a violation: PENALTY_VIOLATIONS of them within
# PENALTY_PERIOD ban the player for the next step of the ladder (rule `penalties`: in shadow
# mode the ban is only reported, off counts no violation). An admitted update is added to the
# player's velocity (points in the last minute) and gains (points in MANUAL_REVIEW_PERIOD,
# per-minute buckets) unless the player is under review and their actions are held; an
# action_id already seen within the minute is not added twice. Time is Redis's own clock,
# shared by all servers.
# KEYS: the global log. ARGV: window_ms, user_limit, global_limit, violations, period_ms,
# memory_ms, steps ("60000,300000,..."), penalty mode, review mode, review period in
# minutes, whether to count velocity and gains ("1": a rule uses them), then one argument per
# request, its fields separated by tabs: sid, user_id, member (random, unique), trusted,
# action_id, points, the action type's own limit per window (0: none), the action type.
# Returns per request {session or false, verdict, retry_ms, remaining, reset_ms, velocity,
# gains, under review (0/1), shadow ban level (0: none)[, velocity and gains before this
# action: only for ok]}; verdict is ok, user, global, skip
# (session not live: nothing counted), suspended (a ban in force), banned (banned by this
# request; remaining carries the ladder's level), type (the action type's own limit).
ADMIT_SCRIPT = (
    CLOCK_LUA
    + ACCOUNT_LUA
    + """
local window, user_limit, global_limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local needed, period, memory = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local steps = {}
for step in string.gmatch(ARGV[7], '%d+') do steps[#steps + 1] = tonumber(step) end
local penalty_mode, review_mode, review_minutes = ARGV[8], ARGV[9], tonumber(ARGV[10])
local accounting = ARGV[11] == '1'  -- velocity or manual_review is on
local global_key = KEYS[1]
-- The global log is trimmed and counted once: every request of this call has the same
-- `now`. The members admitted here are added together at the end.
redis.call('ZREMRANGEBYSCORE', global_key, '-inf', now - window)
local global_used = redis.call('ZCARD', global_key)
local admitted = {}
local answers = {}
for i = 12, #ARGV do
  local sid, user, member, trusted, action_id, points, kind_limit, kind = string.match(
    ARGV[i], '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  kind_limit = tonumber(kind_limit)
  -- The session entry, a ban and the review mark (all plain strings) in one read.
  local found = redis.call('MGET', 'session:' .. sid, 'ban:' .. user, 'review:' .. user)
  local session, reviewed = found[1], found[3] and 1 or 0
  local banned_for = found[2] and redis.call('PTTL', 'ban:' .. user) or 0
  if banned_for > 0 then
    answers[#answers + 1] = {session or false, 'suspended', banned_for, 0, 0, 0, 0, reviewed, 0}
  elseif trusted ~= '1' and session ~= user then
    answers[#answers + 1] = {session or false, 'skip', 0, 0, 0, 0, 0, reviewed, 0}
  else
    local user_key = 'ratelimit:user:' .. user
    redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now - window)
    local used = redis.call('ZCARD', user_key)
    local refused, wait = nil, 0
    local kind_key = 'ratelimit:type:' .. user .. ':' .. kind
    if used >= user_limit then
      refused = 'user'
      wait = tonumber(redis.call('ZRANGE', user_key, 0, 0, 'WITHSCORES')[2]) + window - now
    elseif kind_limit > 0 then
      redis.call('ZREMRANGEBYSCORE', kind_key, '-inf', now - window)
      if redis.call('ZCARD', kind_key) >= kind_limit then
        refused = 'type'
        wait = tonumber(redis.call('ZRANGE', kind_key, 0, 0, 'WITHSCORES')[2]) + window - now
      end
    end
    if refused then
      local violations = 0
      if penalty_mode ~= 'off' then
        local violations_key = 'ratelimit:violations:' .. user
        violations = redis.call('INCR', violations_key)
        if violations == 1 then redis.call('PEXPIRE', violations_key, period) end
        if violations >= needed then redis.call('DEL', violations_key) end
      end
      if violations >= needed and penalty_mode == 'enforce' then
        local level = redis.call('INCR', 'ban:level:' .. user)
        redis.call('PEXPIRE', 'ban:level:' .. user, memory)
        local step = steps[math.min(level, #steps)]
        redis.call('SET', 'ban:' .. user, level, 'PX', step)
        answers[#answers + 1] = {session or false, 'banned', step, level, 0, 0, 0, reviewed, 0}
      else
        local would = 0
        if violations >= needed then
          would = tonumber(redis.call('GET', 'ban:level:' .. user) or '0') + 1
        end
        local left = refused == 'user' and 0 or user_limit - used
        answers[#answers + 1] = {session or false, refused, wait, left, wait, 0, 0, reviewed, would}
      end
    else
      if global_used >= global_limit then
        -- (all of the log admitted by this call: the oldest is now)
        local oldest = tonumber(redis.call('ZRANGE', global_key, 0, 0, 'WITHSCORES')[2] or now)
        answers[#answers + 1] = {
          session or false, 'global', oldest + window - now, user_limit - used, 0, 0, 0, reviewed, 0
        }
      else
        redis.call('ZADD', user_key, now, member)
        redis.call('PEXPIRE', user_key, window)
        global_used = global_used + 1
        admitted[#admitted + 1] = now
        admitted[#admitted + 1] = member
        if kind_limit > 0 then
          redis.call('ZADD', kind_key, now, member)
          redis.call('PEXPIRE', kind_key, window)
        end
        local oldest = tonumber(redis.call('ZRANGE', user_key, 0, 0, 'WITHSCORES')[2])
        local velocity, gains, velocity_before, gains_before = 0, 0, 0, 0
        if accounting and not (reviewed == 1 and review_mode == 'enforce') then
          velocity, gains, velocity_before, gains_before = account(user, action_id, points, review_minutes)
        end
        answers[#answers + 1] = {
          session or false, 'ok', 0, user_limit - used - 1, oldest + window - now,
          velocity, gains, reviewed, 0, velocity_before, gains_before
        }
      end
    end
  end
end
-- (in slices: Lua's unpack takes a few thousand values at most)
for first = 1, #admitted, 1000 do
  redis.call('ZADD', global_key, unpack(admitted, first, math.min(first + 999, #admitted)))
end
if #admitted > 0 then redis.call('PEXPIRE', global_key, window) end
return answers
"""
)

# The actions of a game server's batch, once credited: added to each player's velocity and
# gains like a player's own (a batch has no per-player rate limit, but its points are theirs).
# ARGV: review period in minutes, then one argument per action: user_id, action_id and points
# separated by tabs. Returns per action {velocity, gains, velocity before, gains before}.
ACCOUNT_SCRIPT = (
    CLOCK_LUA
    + ACCOUNT_LUA
    + """
local review_minutes = tonumber(ARGV[1])
local answers = {}
for i = 2, #ARGV do
  local user, action_id, points = string.match(ARGV[i], '^([^\t]*)\t([^\t]*)\t(.*)$')
  answers[#answers + 1] = {account(user, action_id, points, review_minutes)}
end
return answers
"""
)


@dataclass(frozen=True, slots=True)
class Admission:
    """What the limits said about one request."""

    session: bytes | None  # the cached session entry, for the session check
    verdict: str  # ok, user, global, skip, suspended, banned
    retry_ms: int = 0
    remaining: int = 0
    reset_ms: int = 0
    velocity: int = 0  # the player's admitted points in the last minute, this action included
    gains: int = 0  # ... and within MANUAL_REVIEW_PERIOD
    under_review: bool = False
    shadow_ban_level: int = 0  # the `penalties` rule in shadow mode would have banned at this level
    velocity_before: int = 0  # velocity and gains without this action: a rule fires when it crosses
    gains_before: int = 0

    def headers(self) -> dict[str, str]:
        """The draft IETF RateLimit headers for the per-player policy."""
        reset = max(0, math.ceil(self.reset_ms / 1000))
        return {
            "RateLimit-Policy": f'"player";q={hot.RATE_LIMIT_PER_USER};w={hot.RATE_LIMIT_WINDOW}',
            "RateLimit": f'"player";r={max(0, self.remaining)};t={reset}',
        }

    def refusal(self) -> ApiError | None:
        if self.verdict in ("suspended", "banned"):
            return AccountSuspended(
                "This account is suspended.",
                retry_after=max(1, self.retry_ms) / 1000,
            )
        if self.verdict not in ("user", "global", "type"):
            return None
        whose = {"user": "this player's", "global": "the service's", "type": "this action type's"}[
            self.verdict
        ]
        error = RateLimited(
            f"Too many score updates: {whose} limit is reached.", retry_after=max(1, self.retry_ms) / 1000
        )
        error.extra_headers = self.headers()
        return error


_admit_script = LuaScript(ADMIT_SCRIPT)
_account_script = LuaScript(ACCOUNT_SCRIPT)


def _review_minutes() -> int:
    """MANUAL_REVIEW_PERIOD in whole minutes (the gains buckets'), for both scripts."""
    return max(1, settings.MANUAL_REVIEW_PERIOD // 60)


async def _admit_many(requests: list[tuple]) -> list[Admission]:
    client = aio.async_redis()
    states = requests[0][7]
    args: list = [
        settings.RATE_LIMIT_WINDOW * 1000,
        settings.RATE_LIMIT_PER_USER,
        settings.RATE_LIMIT_GLOBAL,
        int(states["penalties"].threshold),
        settings.PENALTY_PERIOD * 1000,
        settings.PENALTY_MEMORY * 1000,
        ",".join(str(step * 1000) for step in settings.PENALTY_STEPS),
        states["penalties"].mode,
        states["manual_review"].mode,
        _review_minutes(),
        "1" if states["velocity"].active or states["manual_review"].active else "0",
    ]
    for sid, user_id, trusted, action_id, points, kind, kind_limit, _ in requests:
        # One argument per request (eight would cost four times as much to pack); the
        # action type, the only free text (an admin's name for it), comes last.
        member = random_hex16()
        args.append(
            f"{sid}\t{user_id}\t{member}\t{int(trusted)}\t{action_id}\t{points}\t{kind_limit}\t{kind}"
        )
    answers = await _admit_script(client, [GLOBAL_KEY], args)
    admissions = []
    for answer in answers:
        session, verdict, *numbers = answer
        numbers = [int(number) for number in numbers] + [0] * (9 - len(numbers))
        retry, remaining, reset, velocity, gains, reviewed, would_ban, velocity_before, gains_before = numbers
        admissions.append(
            Admission(
                session or None,
                verdict.decode(),
                retry,
                remaining,
                reset,
                velocity,
                gains,
                bool(reviewed),
                would_ban,
                velocity_before,
                gains_before,
            )
        )
    return admissions


async def admit(
    *,
    sid: str,
    user_id: int,
    trusted: bool = False,
    action_id: str = "",
    points: int = 0,
    kind: str = "",
    kind_limit: int = 0,
    states: dict | None = None,
) -> Admission:
    """Check the session entry and count one score update against the limits.

    Unless `trusted` (the database has just said the session is live), nothing is counted
    when the cached session entry does not say live: the caller checks the database first.
    """
    if states is None:
        states = await rule_states_async()
    if aio.async_redis() is None:
        return local_limits.admit(
            user_id, action_id=action_id, points=points, kind=kind, kind_limit=kind_limit, states=states
        )
    together = aio.loop_singleton("admissions", lambda: aio.Coalescer(_admit_many))
    return await together((sid, user_id, trusted, action_id, points, kind, kind_limit, states))


async def gains_account(items: list[tuple[int, str, int]], *, states: dict) -> list[Admission]:
    """Add credited actions of a game server's batch, (user_id, action_id, points), to their
    players' velocity and gains; per action, an admission carrying those counts (all zero when
    neither rule is on), for the rules that judge them after the credit."""
    if not items or not (states["velocity"].active or states["manual_review"].active):
        return [Admission(None, "ok") for _ in items]
    client = aio.async_redis()
    counts = None
    if client is not None:
        args = [_review_minutes()]
        args += [f"{user_id}\t{action_id}\t{points}" for user_id, action_id, points in items]
        try:
            counts = await _account_script(client, [], args)
        except RedisError as error:
            logger.error("redis unreachable (%s): batch gains counted in this process", error)
    if counts is None:
        counts = local_limits.account_many(items)
    return [
        Admission(
            None,
            "ok",
            velocity=int(velocity),
            gains=int(gains),
            velocity_before=int(before),
            gains_before=int(gains_before),
        )
        for velocity, gains, before, gains_before in counts
    ]


class LocalLimits:
    """The same sliding windows in this process's memory (no Redis: one process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.players: dict[int, deque[float]] = {}
        self.kinds: dict[tuple[int, str], deque[float]] = {}
        self.everyone: deque[float] = deque()
        self.violations: dict[int, deque[float]] = {}
        self.levels: dict[int, tuple[int, float]] = {}  # user -> (level, remembered until)
        self.bans: dict[int, float] = {}  # user -> banned until
        self.velocity: dict[int, deque[tuple[float, str, int]]] = {}  # user -> (time, action_id, points)
        self.gains: dict[int, deque[tuple[float, int]]] = {}
        self.reviews: set[int] | None = None  # players under review; None: not loaded yet
        self.warned = False

    def admit(
        self,
        user_id: int,
        *,
        action_id: str = "",
        points: int = 0,
        kind: str = "",
        kind_limit: int = 0,
        states: dict,
    ) -> Admission:
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
            reviewed = user_id in (self.reviews or ())
            of_kind = self.kinds.setdefault((user_id, kind), deque())
            while of_kind and of_kind[0] <= now - window:
                of_kind.popleft()
            if len(mine) >= settings.RATE_LIMIT_PER_USER or (kind_limit and len(of_kind) >= kind_limit):
                verdict, log = (
                    ("user", mine) if len(mine) >= settings.RATE_LIMIT_PER_USER else ("type", of_kind)
                )
                retry = math.ceil((log[0] + window - now) * 1000)
                refused = Admission(None, verdict, retry, 0, retry, under_review=reviewed)
                mode = states["penalties"].mode
                level = (
                    self._violation(user_id, now, needed=int(states["penalties"].threshold))
                    if mode != OFF
                    else 0
                )
                if not level:
                    return refused
                if mode != ENFORCE:
                    return Admission(
                        None, "user", retry, 0, retry, under_review=reviewed, shadow_ban_level=level
                    )
                step = settings.PENALTY_STEPS[min(level, len(settings.PENALTY_STEPS)) - 1]
                self.levels[user_id] = (level, now + settings.PENALTY_MEMORY)
                self.bans[user_id] = now + step
                return Admission(None, "banned", step * 1000, level, under_review=reviewed)
            if len(self.everyone) >= settings.RATE_LIMIT_GLOBAL:
                retry = (self.everyone[0] + window - now) * 1000
                return Admission(
                    None, "global", math.ceil(retry), settings.RATE_LIMIT_PER_USER - len(mine), 0
                )
            mine.append(now)
            self.everyone.append(now)
            if kind_limit:
                of_kind.append(now)
            reset = (mine[0] + window - now) * 1000
            velocity = gains = velocity_before = gains_before = 0
            if not (reviewed and states["manual_review"].mode == ENFORCE):
                velocity, gains, velocity_before, gains_before = self._account(
                    user_id, now, action_id, points
                )
            return Admission(
                None,
                "ok",
                0,
                settings.RATE_LIMIT_PER_USER - len(mine),
                math.ceil(reset),
                velocity,
                gains,
                reviewed,
                0,
                velocity_before,
                gains_before,
            )

    def _account(self, user_id: int, now: float, action_id: str, points: int) -> tuple[int, int, int, int]:
        """Add an admitted action to the player's velocity and gains (caller holds the lock);
        returns them after and before it."""
        recent = self.velocity.setdefault(user_id, deque())
        gained = self.gains.setdefault(user_id, deque())
        while recent and recent[0][0] <= now - 60:
            recent.popleft()
        while gained and gained[0][0] <= now - settings.MANUAL_REVIEW_PERIOD:
            gained.popleft()
        counted = 0
        if all(seen_id != action_id for _, seen_id, _ in recent):
            recent.append((now, action_id, points))
            gained.append((now, points))
            counted = points
        velocity, gains = sum(p for _, _, p in recent), sum(p for _, p in gained)
        return velocity, gains, velocity - counted, gains - counted

    def account_many(self, items: list[tuple[int, str, int]]) -> list[tuple[int, int, int, int]]:
        """`_account` for credited actions (user_id, action_id, points) of a batch."""
        now = time.monotonic()
        with self.lock:
            return [self._account(user_id, now, action_id, points) for user_id, action_id, points in items]

    def counters_reset(self, user_id: int) -> None:
        with self.lock:
            self.velocity.pop(user_id, None)
            self.gains.pop(user_id, None)

    def load(self, *, bans: dict[int, float], reviews: set[int]) -> None:
        """Take the bans in force (user -> seconds left) and open reviews from the database:
        what this process must enforce without Redis (other processes', earlier runs')."""
        now = time.monotonic()
        with self.lock:
            for user_id, seconds in bans.items():
                self.bans[user_id] = max(self.bans.get(user_id, 0.0), now + seconds)
            self.reviews = set(reviews)

    def _violation(self, user_id: int, now: float, *, needed: int) -> int:
        """Count a refusal; the one that completes `needed` of them returns the ban level the
        penalty ladder reaches (0 otherwise). The caller holds the lock."""
        seen = self.violations.setdefault(user_id, deque())
        while seen and seen[0] <= now - settings.PENALTY_PERIOD:
            seen.popleft()
        seen.append(now)
        if len(seen) < needed:
            return 0
        seen.clear()
        level, remembered_until = self.levels.get(user_id, (0, 0.0))
        return (level if remembered_until > now else 0) + 1

    def review_set(self, user_id: int, under_review: bool) -> None:
        with self.lock:
            if self.reviews is not None:
                (self.reviews.add if under_review else self.reviews.discard)(user_id)

    def ban(self, user_id: int, seconds: float) -> None:
        with self.lock:
            self.bans[user_id] = time.monotonic() + seconds

    def lift(self, user_id: int) -> None:
        with self.lock:
            self.bans.pop(user_id, None)

    def clear(self) -> None:
        with self.lock:
            self.players.clear()
            self.kinds.clear()
            self.everyone.clear()
            self.violations.clear()
            self.levels.clear()
            self.bans.clear()
            self.velocity.clear()
            self.gains.clear()
            self.reviews = None
        _enforced.forget()


local_limits = LocalLimits()


def _enforced_load() -> None:
    from antifraud.selectors import bans_in_force, reviewed_player_ids

    local_limits.load(bans=bans_in_force(), reviews=reviewed_player_ids())


# Without Redis: the bans in force and open reviews, placed by other processes or earlier
# runs, read into `local_limits` from the database at most every RULES_CACHE_SECONDS.
_enforced = aio.ProcessCopy(_enforced_load, "RULES_CACHE_SECONDS")


async def admit_score_request(
    *,
    user_id: int,
    sid: str,
    action_id: str = "",
    points: int = 0,
    kind: str = "",
    kind_limit: int = 0,
    client_ip: str | None = None,
    session_checked: bool = False,
    states: dict | None = None,
) -> Admission:
    """The door of POST /api/scores after the token: the address is not blocked, the
    session is live, no ban is in force and the limits allow one more update (one Redis
    round trip when the session is cached), or raise. The admission also tells whether the
    player is under review and their velocity and gains, for the rules after the credit.

    `session_checked`: the caller's authentication already asked about the session.
    """

    async def session_live_in_database() -> bool:
        return await aio.db_call(session_load)(sid=sid, user_id=user_id, cache=True)

    if states is None:
        states = await rule_states_async()
    await address_check(client_ip, user_id=user_id, action_id=action_id, state=states["ip_blocklist"])
    admission = None
    if aio.async_redis() is not None:
        try:
            admission = await admit(
                sid=sid,
                user_id=user_id,
                trusted=session_checked,
                action_id=action_id,
                points=points,
                kind=kind,
                kind_limit=kind_limit,
                states=states,
            )
            if admission.verdict == "skip":
                if session_state_from_cache(admission.session, user_id=user_id) is False:
                    raise Unauthorized("The session has ended.")
                # Not cached: the database decides (and fills the cache), then it is counted.
                if not await session_live_in_database():
                    raise Unauthorized("The session has ended.")
                admission = await admit(
                    sid=sid,
                    user_id=user_id,
                    trusted=True,
                    action_id=action_id,
                    points=points,
                    kind=kind,
                    kind_limit=kind_limit,
                    states=states,
                )
        except RedisError as error:
            logger.error("redis unreachable (%s): rate limits counted in this process", error)
            admission = None
    if admission is None:
        if not session_checked and not await session_is_live_async(sid=sid, user_id=user_id):
            raise Unauthorized("The session has ended.")
        await _enforced.get_async()
        admission = local_limits.admit(
            user_id, action_id=action_id, points=points, kind=kind, kind_limit=kind_limit, states=states
        )
    if admission.shadow_ban_level:
        from antifraud.services import decision_record

        await aio.db_call(decision_record)(
            rule="penalties",
            mode=states["penalties"].mode,
            outcome="banned",
            user_id=user_id,
            action_id=action_id,
            client_ip=client_ip,
            threshold=states["penalties"].threshold,
            observed=states["penalties"].threshold,
            evidence={
                "would_ban_level": admission.shadow_ban_level,
                "period_seconds": settings.PENALTY_PERIOD,
            },
        )
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
                user_id=user_id,
                level=admission.remaining,
                seconds=admission.retry_ms / 1000,
                action_id=action_id,
                client_ip=client_ip,
            )
        raise refusal
    return admission
