"""The ranking index in Redis: a sorted set per board, with its top-10 cache.

Key layout (the board name makes room for more boards later):
  leaderboard:{board}:index    sorted set  user_id -> total score
  leaderboard:{board}:reached  hash        user_id -> epoch microseconds the total was reached
  leaderboard:{board}:top10    string      cached top-10 JSON (TTL LEADERBOARD_CACHE_TTL)
  leaderboard:{board}:version  counter     bumped whenever the top 10 may have changed
  {prefix}:leaderboard:{board}:changed  channel  the version, when the top 10 or the player count changed
  {prefix}:leaderboard:{board}:scores   channel  "user_id:new_score:rank:points_gained ..." of each record call
  (channels span Redis databases, so they carry REDIS_CHANNEL_PREFIX, by default "sb<db>")
  leaderboard:names            hash        user_id -> username
  idem:{action_id}             string      "status:new_score:rank" of a credited action
"""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from scoreboard_project.redis import LuaScript

TOP_N = 10
# Ties at the tenth score are resolved by reach time; this bounds how many are read.
TIE_SCAN_LIMIT = 1000
NAMES_KEY = "leaderboard:names"


@dataclass(frozen=True, slots=True)
class BoardKeys:
    index: str
    reached: str
    top10: str
    version: str
    changed: str
    scores: str

    @classmethod
    def for_board(cls, board: str, channel_prefix: str = "") -> BoardKeys:
        prefix = f"leaderboard:{board}"
        # Pub/sub channels span Redis databases: they carry the deployment's prefix.
        channels = f"{channel_prefix}:{prefix}" if channel_prefix else prefix
        return cls(
            f"{prefix}:index",
            f"{prefix}:reached",
            f"{prefix}:top10",
            f"{prefix}:version",
            f"{channels}:changed",
            f"{channels}:scores",
        )


def idempotency_key(action_id: str) -> str:
    return f"idem:{action_id}"


# Record committed totals, in one round trip for any number of them: raise each player's
# entry (never lower it, so out-of-order commits cannot move a player back, and never from a
# record reached before the entry's own reach time), invalidate the
# top 10 when it may have changed, announce the change (also for a new player, since the
# player count moved), compute each competition rank and remember each answer for replays.
# The credited records (those with a status) are also published on the scores channel, in one
# message: "user_id:new_score:rank:points_gained" items separated by spaces, for the live
# sockets of those players.
# The same call applies each record's board operations (leaderboard.boards): the boards
# other than the global one, each in its period, in their own sorted sets. A "sum" is applied
# only by the call that first stores the record's answer, so a retried call adds nothing twice.
# The codes of the boards whose top n changed are published on the boards channel.
# KEYS: index, reached, top10, version, changed, scores, boards channel, then one idempotency
# key per record, then the index of each board-period the call touches, then each record's
# player hash (leaderboard.boards.player_key).
# ARGV: top_n, idempotency_ttl, record count, then per record: user_id, total,
# reached_micros, status, points (status "" means: remember nothing and announce nothing);
# then the number of board-periods and, per board-period: operator ("set" takes the total,
# the others the points), sign, expire_at (epoch seconds, 0: never), board code, period key;
# then per record: its member and the numbers (1-based) of the board-periods it counts for.
RECORD_SCRIPT = """
local index, reached, top, version, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local n, ttl, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local top_moved, announce = false, false
-- Whether a record's answer is stored by this call (a "sum" is applied only then).
local answered = {}
local function first_answer(rec)
  local known = answered[rec]
  if known == nil then
    known = ARGV[7 + (rec - 1) * 5] == '' or redis.call('EXISTS', KEYS[7 + rec]) == 0
    answered[rec] = known
  end
  return known
end
-- Per board: changed (its top n), and the n-th stored score before this call's first change
-- of it (false: fewer than n entries). A change that leaves the top n as it was leaves the
-- n-th entry as it was, so one read per board and call tells every change.
local changed_boards, changed_list, tails, expiring = {}, {}, {}, {}
-- The board-periods of this call, once each: operator, sign, expire_at, code, period (their
-- index keys follow the idempotency keys, then each record's player hash); then per record
-- its member and the numbers of the board-periods it counts for, space-separated.
local boards_at = 4 + count * 5
local nboards = tonumber(ARGV[boards_at] or '0')
local records_at = boards_at + 1 + nboards * 5
for rec = 1, (nboards > 0) and count or 0 do
  local list = ARGV[records_at + (rec - 1) * 2 + 1]
  local numbers, fields = {}, {}
  for text in string.gmatch(list, '%d+') do
    local number = tonumber(text)
    numbers[#numbers + 1] = number
    fields[#fields + 1] = ARGV[boards_at + 1 + (number - 1) * 5 + 3]
  end
  if #numbers > 0 then
    -- The player's entry on each board: "period|member|stored" (stored = sign * value, lower
    -- is better), one hash per player read and written once.
    local player = KEYS[7 + count + nboards + rec]
    local held = redis.call('HMGET', player, unpack(fields))
    local writes = {}
    for i, b in ipairs(numbers) do
      local a = boards_at + 1 + (b - 1) * 5
      local op, sign, expire, code, period = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4]
      local value = tonumber(op == 'set' and ARGV[5 + (rec - 1) * 5] or ARGV[8 + (rec - 1) * 5])
      local new_member = ARGV[records_at + (rec - 1) * 2]
      local board = KEYS[7 + count + b]
      local old, old_stored
      if held[i] then
        local old_period, member, stored_text = string.match(held[i], '^([^|]*)|([^|]*)|(.*)$')
        if old_period == period then old, old_stored = member, tonumber(stored_text) end
      end
      local later = not old or string.sub(new_member, 1, 16) >= string.sub(old, 1, 16)
      local stored
      if op == 'sum' then
        if first_answer(rec) then
          stored = (old_stored or 0) + sign * value
          if not later then new_member = old end
        end
      elseif op == 'best' then
        if not old_stored or sign * value < old_stored then stored = sign * value end
      elseif later then
        stored = sign * value
      end
      if stored then
        if not changed_boards[code] then
          local tail = tails[code]
          if tail == nil then
            local found = redis.call('ZRANGE', board, n - 1, n - 1, 'WITHSCORES')
            tail = found[2] and tonumber(found[2]) or false
            tails[code] = tail
          end
          if tail == false or stored <= tail or (old_stored and old_stored <= tail) then
            changed_boards[code] = true
            changed_list[#changed_list + 1] = code
          end
        end
        if old then redis.call('ZREM', board, old) end
        redis.call('ZADD', board, stored, new_member)
        -- A period's index expires after it (its first player makes it): set once a call.
        if expire > 0 and not old and not expiring[b] then
          expiring[b] = true
          redis.call('EXPIREAT', board, expire)
        end
        writes[#writes + 1] = code
        writes[#writes + 1] = period .. '|' .. new_member .. '|' .. stored
      end
    end
    if #writes > 0 then redis.call('HSET', player, unpack(writes)) end
  end
end
if #changed_list > 0 then
  redis.call('PUBLISH', KEYS[7], table.concat(changed_list, ' '))
end
-- Each player's entry as this script leaves it (false: none), read once per player.
local entries = {}
local function entry(user)
  local known = entries[user]
  if known == nil then
    known = tonumber(redis.call('ZSCORE', index, user)) or false
    entries[user] = known
  end
  return known
end
-- The n-th score before these records (none: fewer than n players). Entries only rise, so a
-- record below it, of a player who was below it, cannot have changed the top n.
local tail = redis.call('ZREVRANGE', index, n - 1, n - 1, 'WITHSCORES')
local floor = tail[2] and tonumber(tail[2])
for i = 0, count - 1 do
  local user, total, at = ARGV[4 + i * 5], tonumber(ARGV[5 + i * 5]), ARGV[6 + i * 5]
  local current = entry(user)
  -- A record older than the entry's reach time (a credit committed before a moderator's
  -- revert, indexed after it) changes nothing.
  if not current or (total > current and tonumber(at) >= tonumber(redis.call('HGET', reached, user) or '0')) then
    if not current then announce = true end
    if not floor or total >= floor or (current and current >= floor) then top_moved = true end
    redis.call('ZADD', index, total, user)
    redis.call('HSET', reached, user, at)
    entries[user] = total
  end
end
-- Ranks against the board with every record applied: 1 + the other players above the total
-- (a player whose entry is already higher, by a later credit, does not count against it).
local ranks, credited = {}, {}
for i = 0, count - 1 do
  local user, raw_total, status = ARGV[4 + i * 5], ARGV[5 + i * 5], ARGV[7 + i * 5]
  local above = redis.call('ZCOUNT', index, '(' .. raw_total, '+inf')
  local own = entries[user]
  if own and own > tonumber(raw_total) then above = above - 1 end
  local rank = above + 1
  if status ~= '' then
    redis.call('SET', KEYS[8 + i], status .. ':' .. raw_total .. ':' .. rank, 'EX', ttl)
    credited[#credited + 1] = user .. ':' .. raw_total .. ':' .. rank .. ':' .. ARGV[8 + i * 5]
  end
  ranks[#ranks + 1] = rank
end
if #credited > 0 then
  redis.call('PUBLISH', KEYS[6], table.concat(credited, ' '))
end
if top_moved then
  redis.call('INCR', version)
  redis.call('DEL', top)
end
if top_moved or announce then
  redis.call('PUBLISH', channel, redis.call('GET', version) or '0')
end
return {ranks, (top_moved or announce) and 1 or 0, changed_list}
"""

# Everything needed to build the top 10: the members down to the tenth score (ties
# included), their reach times and names, the player count and the version read.
TOP_READ_SCRIPT = """
local index, reached, version, names = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local tail = redis.call('ZREVRANGE', index, n - 1, n - 1, 'WITHSCORES')
local members
if #tail == 0 then
  members = redis.call('ZREVRANGE', index, 0, -1, 'WITHSCORES')
else
  members = redis.call('ZREVRANGEBYSCORE', index, '+inf', tail[2], 'WITHSCORES', 'LIMIT', 0, limit)
end
local ids = {}
for i = 1, #members, 2 do ids[#ids + 1] = members[i] end
local times, usernames = {}, {}
if #ids > 0 then
  times = redis.call('HMGET', reached, unpack(ids))
  usernames = redis.call('HMGET', names, unpack(ids))
end
return {members, times, usernames, redis.call('ZCARD', index), redis.call('GET', version) or '0'}
"""

# Store a built top 10 only if nothing changed the board while it was being built.
TOP_STORE_SCRIPT = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


# Called on every credit, like the admission script: through LuaScript (asyncio clients).
record_script = LuaScript(RECORD_SCRIPT)


class Scripts:
    """The board-building scripts, registered once per client (sync or asyncio; EVALSHA,
    falling back to EVAL)."""

    def __init__(self, client):
        self.top_read = client.register_script(TOP_READ_SCRIPT)
        self.top_store = client.register_script(TOP_STORE_SCRIPT)


_scripts: WeakKeyDictionary = WeakKeyDictionary()


def scripts_for(client) -> Scripts:
    """The scripts bound to a client (sync or asyncio; they are registered per client)."""
    found = _scripts.get(client)
    if found is None:
        found = _scripts[client] = Scripts(client)
    return found
