-- POST /api/scores: each request a new action of the next player in turn, so that every
-- player stays far inside RATE_LIMIT_PER_USER. args: bench folder, thread count.
-- Each player's request head is built once, and each action_id is this thread's random
-- prefix and a counter (a well-formed UUID, never repeated): wrk.format and a random UUID
-- per request cost the load generator about 11 us of a request's ~25.
package.path = package.path .. ";bench/?.lua"
require "common"

local heads, counter, threads, prefix

function init(args)
  local tokens = lines(args[1] .. "/tokens.txt")
  threads = tonumber(args[2])
  math.randomseed(os.time() * 1000 + tid)
  prefix = string.format("%08x-%04x", math.random(0, 0x7fffffff), tid)
  heads = {}
  for i, token in ipairs(tokens) do
    heads[i] = "POST /api/scores HTTP/1.1\r\nHost: " .. wrk.host .. "\r\nAuthorization: Bearer " .. token ..
      "\r\nContent-Type: application/json\r\nContent-Length: "
  end
  counter = 0
end

function request()
  local index = (counter * threads + tid) % #heads + 1
  counter = counter + 1
  local body = string.format('{"action_id":"%s-4000-8000-%012x","action_type":"quest","points":%d}',
    prefix, counter, math.random(1, 100))
  return heads[index] .. #body .. "\r\n\r\n" .. body
end

done = report
