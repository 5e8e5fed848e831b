-- Shared by the bench's wrk scripts (loaded with dofile): the RESULT line the runner parses.
-- Latencies in ms; `ok` is what the scenario counts as done (2xx answers, or whole flows).
bench = {}
bench.threads = {}

function bench.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default == nil then error("missing environment variable " .. name) end
    return default
  end
  return value
end

function bench.keep(thread)
  table.insert(bench.threads, thread)
end

function bench.sum(name)
  local total = 0
  for _, thread in ipairs(bench.threads) do
    total = total + (tonumber(thread:get(name)) or 0)
  end
  return total
end

function bench.report(summary, latency, ok, extra)
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT rps=%.1f requests=%d ok=%d duration_s=%.3f non2xx=%d sock_errors=%d " ..
    "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f mean_ms=%.2f%s\n",
    summary.requests / secs, summary.requests, ok, secs, e.status, sock,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, latency.mean / 1000, extra or ""))
end
