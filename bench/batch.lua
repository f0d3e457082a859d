-- POST /api/scores/batch: 500 new actions for random players per request.
package.path = package.path .. ";bench/?.lua"
require "common"

local ids, token
local SIZE = 500

function init(args)
  ids = lines(args[1] .. "/user_ids.txt")
  token = lines(args[1] .. "/service_token.txt")[1]
  math.randomseed(os.time() * 1000 + tid)
end

function request()
  local items = {}
  for i = 1, SIZE do
    items[i] = string.format('{"user_id":%s,"action_id":"%s","action_type":"quest","points":%d}',
      ids[math.random(1, #ids)], uuid4(), math.random(1, 100))
  end
  return wrk.format("POST", "/api/scores/batch",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
    '{"actions":[' .. table.concat(items, ",") .. ']}')
end

done = report
