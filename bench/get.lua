-- GET on one path (args[1]); the result line for the runner.
package.path = package.path .. ";bench/?.lua"
require "common"

local path = "/api/scoreboard"
function init(args)
  path = args[1] or path
end

function request()
  return wrk.format("GET", path)
end

done = report
