-- One fixed request, repeated: client_credentials at the token endpoint, GETs of JWKS and
-- discovery, the API with a Bearer JWT or API key.
-- Env: BENCH_METHOD (GET), BENCH_BODY, BENCH_CONTENT_TYPE, BENCH_AUTHORIZATION (whole header value).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = bench.env("BENCH_METHOD", "GET")
local body = bench.env("BENCH_BODY", "")
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = bench.env("BENCH_CONTENT_TYPE", "application/x-www-form-urlencoded")
end
local authorization = bench.env("BENCH_AUTHORIZATION", "")
if authorization ~= "" then wrk.headers["Authorization"] = authorization end
wrk.headers["User-Agent"] = "authserver-bench"

function setup(thread) bench.keep(thread) end

function done(summary, latency, requests)
  local e = summary.errors
  bench.report(summary, latency, summary.requests - e.status)
end
