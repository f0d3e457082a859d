-- POST /api/scores: each request a new action of the next player in turn, so that every
-- player stays far inside RATE_LIMIT_PER_USER. args: bench folder, thread count.
package.path = package.path .. ";bench/?.lua"
require "common"

local tokens, counter, threads

function init(args)
  tokens = lines(args[1] .. "/tokens.txt")
  threads = tonumber(args[2])
  math.randomseed(os.time() * 1000 + tid)
  counter = 0
end

function request()
  local index = (counter * threads + tid) % #tokens + 1
  counter = counter + 1
  local body = string.format('{"action_id":"%s","action_type":"quest","points":%d}', uuid4(), math.random(1, 100))
  return wrk.format("POST", "/api/scores",
    {["Authorization"] = "Bearer " .. tokens[index], ["Content-Type"] = "application/json"}, body)
end

done = report
