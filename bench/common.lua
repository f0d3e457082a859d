-- Shared by the wrk scripts: a result line the runner parses, and random UUIDs.
-- A random version-4 UUID in one string.format (building it a character at a time cost the
-- load generator a third of its CPU).
function uuid4()
  return string.format("%08x-%04x-4%03x-%04x-%04x%04x%04x",
    math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff),
    math.random(0x8000, 0xbfff), math.random(0, 0xffff), math.random(0, 0xffff), math.random(0, 0xffff))
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
