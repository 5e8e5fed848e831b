-- refresh_token grant with rotation: every request presents a refresh token never presented before
-- (a rotated one would revoke its family). Each thread starts from its share of the token file
-- and queues the new refresh token of every answer; any connection takes the next token from the
-- queue. Tokens still queued at the end are written to BENCH_TOKENS_OUT for the next run; tokens
-- of requests in flight when wrk stops are lost (possibly rotated): never reused.
-- Env: BENCH_TOKENS_IN, BENCH_TOKENS_OUT, BENCH_CLIENT_BASIC, BENCH_SCOPE (optional, form-encoded).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local headers = {
  ["Authorization"] = "Basic " .. bench.env("BENCH_CLIENT_BASIC"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["User-Agent"] = "authserver-bench",
}
local scope = bench.env("BENCH_SCOPE", "")
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  bench.keep(thread)
end

function init(args)
  queue = {}
  local threads = tonumber(bench.env("BENCH_THREADS", "1"))
  local i = 0
  for line in io.lines(bench.env("BENCH_TOKENS_IN")) do
    if line ~= "" and i % threads == thread_index then table.insert(queue, line) end
    i = i + 1
  end
  rotated = 0
  bad = 0
  starved = 0
end

function request()
  local n = #queue
  if n == 0 then
    starved = starved + 1  -- no fresh token: an invalid one, counted as an error, never a reused one
    return wrk.format("POST", "/oauth/token", headers, "grant_type=refresh_token&refresh_token=starved")
  end
  local token = queue[1]
  table.remove(queue, 1)
  local body = "grant_type=refresh_token&refresh_token=" .. token
  if scope ~= "" then body = body .. "&scope=" .. scope end
  return wrk.format("POST", "/oauth/token", headers, body)
end

function response(status, headers, body)
  local token = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    table.insert(queue, token)
    rotated = rotated + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local out = io.open(bench.env("BENCH_TOKENS_OUT"), "w")
  for _, thread in ipairs(bench.threads) do
    for _, token in ipairs(thread:get("queue") or {}) do out:write(token, "\n") end
  end
  out:close()
  bench.report(summary, latency, bench.sum("rotated"),
    string.format(" rotated=%d bad_answers=%d starved=%d", bench.sum("rotated"), bench.sum("bad"), bench.sum("starved")))
end
