-- GET with a player's Bearer token (around-me): each request the next player's token in
-- turn. args: tokens file, path. Each player's request is built once.
package.path = package.path .. ";bench/?.lua"
require "common"

local requests, counter

function init(args)
  local tokens = lines(args[1])
  local path = args[2]
  requests = {}
  for i, token in ipairs(tokens) do
    requests[i] = "GET " .. path .. " HTTP/1.1\r\nHost: " .. wrk.host .. "\r\nAuthorization: Bearer " ..
      token .. "\r\n\r\n"
  end
  counter = tid
end

function request()
  counter = counter + 1
  return requests[counter % #requests + 1]
end

done = report
