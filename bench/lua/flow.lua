-- The authorization-code flow with PKCE, whole: GET /oauth/authorize with the browser session of
-- a user whose consent is remembered (302 to the redirect URI with a code), then POST /oauth/token
-- with that code and its PKCE verifier (ID, access and refresh token). wrk gives a script no handle
-- on its connections, so each thread keeps a queue: an authorize answer queues the token request
-- for its code, and the next request any connection sends is a queued token request if there is
-- one, else a new authorize request. A flow counts when its token answer is a 200 holding an
-- id_token and a refresh_token.
-- Env: BENCH_AUTHORIZE_PATH (path and query without state and code_challenge), BENCH_COOKIE,
-- BENCH_CLIENT_BASIC (base64 id:secret), BENCH_REDIRECT_URI (form-encoded),
-- BENCH_PKCE_FILE (lines "verifier challenge").
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local authorize_path = bench.env("BENCH_AUTHORIZE_PATH")
local cookie = bench.env("BENCH_COOKIE")
local redirect_uri = bench.env("BENCH_REDIRECT_URI")
local token_headers = {
  ["Authorization"] = "Basic " .. bench.env("BENCH_CLIENT_BASIC"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["User-Agent"] = "authserver-bench",
}
local authorize_headers = {["Cookie"] = cookie, ["User-Agent"] = "authserver-bench"}

function setup(thread) bench.keep(thread) end

function init(args)
  pkce = {}
  for line in io.lines(bench.env("BENCH_PKCE_FILE")) do
    local verifier, challenge = line:match("^(%S+) (%S+)$")
    if verifier then table.insert(pkce, {verifier, challenge}) end
  end
  queue = {}
  next_pair = 0
  flows = 0
  bad_authorize = 0
  bad_token = 0
end

function request()
  local n = #queue
  if n > 0 then
    local queued = queue[n]
    queue[n] = nil
    return queued
  end
  next_pair = next_pair % #pkce + 1
  return wrk.format("GET", authorize_path .. "&state=" .. next_pair .. "&code_challenge=" .. pkce[next_pair][2],
                    authorize_headers)
end

function response(status, headers, body)
  if status == 302 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    local state = tonumber(location:match("[?&]state=([^&]+)") or "")
    if code and state and pkce[state] then
      table.insert(queue, wrk.format("POST", "/oauth/token", token_headers,
        "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect_uri ..
        "&code_verifier=" .. pkce[state][1]))
    else
      bad_authorize = bad_authorize + 1
    end
  elseif status == 200 and body:find('"id_token"', 1, true) and body:find('"refresh_token"', 1, true) then
    flows = flows + 1
  elseif status == 200 then
    bad_authorize = bad_authorize + 1  -- a page (login or consent) instead of a redirect
  else
    bad_token = bad_token + 1
  end
end

function done(summary, latency, requests)
  local bad = bench.sum("bad_authorize") + bench.sum("bad_token")
  bench.report(summary, latency, bench.sum("flows"),
    string.format(" flows=%d bad_answers=%d", bench.sum("flows"), bad))
end
