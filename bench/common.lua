-- Shared by the wrk scripts: a result line the runner parses, and random UUIDs.
local hex = "0123456789abcdef"

function uuid4()
  local parts = {}
  for i = 1, 36 do
    if i == 9 or i == 14 or i == 19 or i == 24 then
      parts[i] = "-"
    elseif i == 15 then
      parts[i] = "4"
    elseif i == 20 then
      local v = math.random(8, 11) + 1
      parts[i] = hex:sub(v, v)
    else
      local v = math.random(1, 16)
      parts[i] = hex:sub(v, v)
    end
  end
  return table.concat(parts)
end

function lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

function report(summary, latency)
  local errors = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration, summary.bytes, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end

local thread_number = 0
function setup(thread)
  thread:set("tid", thread_number)
  thread_number = thread_number + 1
end
