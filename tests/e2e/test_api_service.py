"""The sample API service as a real process (`authserver api serve`, granian, 2 workers, Redis
counters) in front of the real authorization server (`authserver serve`, 2 workers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import requests

from ..stores import delete_keys, require_redis, unavailable, unique_prefix
from .by_hand import user_tokens
from .conftest import API_AUDIENCE
from .processes import ApiService, authserver_env, free_port, new_workspace, run_cli, running_server

pytestmark = pytest.mark.e2e

SCOPE = "read:users write:data"
USER_APP_REDIRECT_URI = "https://app.example.com/callback"
EMAIL, PASSWORD = "ada@example.com", "e2e usage metering passphrase"
API_KEY_CACHE_SECONDS = 2  # the API's AUTHSERVER_API_KEY_CACHE_SECONDS: how long a revoked key may still pass
USAGE_FLUSH_SECONDS = 0.5  # the API's AUTHSERVER_USAGE_FLUSH_SECONDS: short, so the test waits little
KEY_RELOAD_SECONDS = 1  # the server's AUTHSERVER_KEY_RELOAD_SECONDS: short, so rotation tests wait little


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, e2e_database_url):
    workspace = new_workspace(tmp_path_factory, e2e_database_url, "api-e2e", AUTHSERVER_API_AUDIENCE=API_AUDIENCE,
                              AUTHSERVER_KEY_RELOAD_SECONDS=str(KEY_RELOAD_SECONDS))
    workspace.run("db", "upgrade")
    workspace.run("keys", "generate")  # the active key
    workspace.run("keys", "generate")  # the next one, published before the API first fetches the JWKS
    client = json.loads(workspace.run("clients", "create", "--name", "API E2E", "--grant-type", "client_credentials",
                                      "--scope", SCOPE))
    app = json.loads(workspace.run("clients", "create", "--name", "User App", "--redirect-uri", USER_APP_REDIRECT_URI,
                                   "--grant-type", "authorization_code", "--scope", f"{SCOPE} keys:manage"))
    workspace.run("users", "create", "--email", EMAIL, "--name", "Ada", "--password-stdin", stdin=PASSWORD + "\n")
    with running_server(workspace, workers=2) as server:
        server.client = (client["client_id"], client["client_secret"])
        server.user_app = (app["client_id"], app["client_secret"])
        server.workspace = workspace
        yield server


@pytest.fixture(scope="module")
def api(auth_server, tmp_path_factory):
    redis_url = require_redis()
    prefix = unique_prefix()
    workdir = tmp_path_factory.mktemp("api-service")
    service = ApiService(env=authserver_env(
        AUTHSERVER_ISSUER=auth_server.base_url, AUTHSERVER_API_AUDIENCE=API_AUDIENCE,
        AUTHSERVER_REDIS_URL=redis_url, AUTHSERVER_RATELIMIT_PREFIX=prefix,
        # The service's own client, to report usage (the API E2E client doubles as it here).
        AUTHSERVER_API_CLIENT_ID=auth_server.client[0], AUTHSERVER_API_CLIENT_SECRET=auth_server.client[1],
        AUTHSERVER_USAGE_FLUSH_SECONDS=str(USAGE_FLUSH_SECONDS),
        AUTHSERVER_API_KEY_CACHE_SECONDS=str(API_KEY_CACHE_SECONDS),
    ), cwd=workdir, port=free_port(), workers=2)
    service.start()
    try:
        service.wait_until_healthy()
        service.redis = (redis_url, prefix)
        yield service
    finally:
        service.stop()
        delete_keys(redis_url, prefix)


def client_token(auth_server) -> str:
    response = requests.post(auth_server.url("/oauth/token"), data={"grant_type": "client_credentials", "scope": SCOPE},
                             auth=auth_server.client, headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_a_token_from_the_server_is_accepted(auth_server, api):
    token = client_token(auth_server)
    response = requests.get(api.url("/v1/users/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == auth_server.client[0] and response.json()["plan"] == "free"
    response = requests.post(api.url("/v1/data"), json={"k": "v"}, headers={"Authorization": f"Bearer {token}"},
                             timeout=10)
    assert response.status_code == 201 and response.json()["data"] == {"k": "v"}
    assert requests.get(api.url("/v1/users"), timeout=10).status_code == 401


def test_refresh_is_forwarded_to_the_server(auth_server, api):
    body = {"refresh_token": "not-a-refresh-token"}
    direct = requests.post(auth_server.url("/v1/auth/refresh"), json=body, auth=auth_server.client, timeout=10)
    forwarded = requests.post(api.url("/v1/auth/refresh"), json=body, auth=auth_server.client, timeout=10)
    assert (forwarded.status_code, forwarded.json(), forwarded.headers["Content-Type"]) == (
        direct.status_code, direct.json(), direct.headers["Content-Type"])


def test_the_free_burst_holds_across_both_workers(auth_server, api):
    # A client_credentials token has no plan claim: it counts as free (50 requests a minute).
    redis_url, prefix = api.redis
    delete_keys(redis_url, prefix)  # start from zero, whatever other tests counted for this client
    token = client_token(auth_server)
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}  # a fresh connection each
    statuses = []
    for _ in range(51):
        response = requests.get(api.url("/v1/users"), headers=headers, timeout=10)
        statuses.append(response.status_code)
        assert all(name in response.headers for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining",
                                                         "X-RateLimit-Reset"))
    assert statuses == [200] * 50 + [429]
    assert response.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(response.headers["Retry-After"]) >= 1 and response.headers["X-RateLimit-Remaining"] == "0"
    # The counters are the shared ones, in Redis under this run's prefix.
    assert delete_keys(redis_url, prefix) > 0


def test_tokens_signed_after_a_key_rotation_are_accepted_without_restarting_the_api(auth_server, api):
    redis_url, prefix = api.redis
    delete_keys(redis_url, prefix)  # this test's requests stay far below the burst
    before = client_token(auth_server)
    assert all(status == 200 for status in api_statuses(api, before, times=6))  # both workers cache the JWKS

    # The published next key starts signing. --force: the rule that a next key must have been
    # published for the JWKS cache lifetime is for production; here the API fetched it at start.
    auth_server.workspace.run("keys", "rotate", "--force")
    after = token_signed_by_another_key(auth_server, jwt.get_unverified_header(before)["kid"])

    # The API already holds the new key from its cached JWKS; the earlier token stays valid (its
    # key is published as retired).
    assert api_statuses(api, after, times=6) == [200] * 6
    assert api_statuses(api, before, times=2) == [200] * 2
    delete_keys(redis_url, prefix)


def api_statuses(api, token: str, times: int) -> list[int]:
    """GET /v1/users `times` times, each on a fresh connection, so both API workers answer."""
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    return [requests.get(api.url("/v1/users"), headers=headers, timeout=10).status_code for _ in range(times)]


def token_signed_by_another_key(auth_server, old_kid: str) -> str:
    """A token from the server once every worker has picked up the rotation (within the reload interval)."""
    deadline = time.monotonic() + 10 * KEY_RELOAD_SECONDS + 5
    while True:
        tokens = [client_token(auth_server) for _ in range(4)]  # fresh connections: both workers
        if all(jwt.get_unverified_header(token)["kid"] != old_kid for token in tokens):
            return tokens[-1]
        assert time.monotonic() < deadline, "the server kept signing with the old key"
        time.sleep(0.2)


def test_usage_counted_by_the_api_shows_up_on_the_server(auth_server, api):
    tokens = user_tokens(auth_server, client=auth_server.user_app, redirect_uri=USER_APP_REDIRECT_URI,
                         email=EMAIL, password=PASSWORD, scope=SCOPE)
    assert api_statuses(api, tokens["access_token"], times=3) == [200] * 3  # both workers, each metering

    deadline = time.monotonic() + 20 * USAGE_FLUSH_SECONDS + 5
    while (counted := this_hour_usage(auth_server, tokens["access_token"]))["count"] < 3:
        assert time.monotonic() < deadline, f"the server has {counted}"
        time.sleep(USAGE_FLUSH_SECONDS)
    assert counted["count"] == 3 and counted["by_credential"] == {auth_server.user_app[0]: 3}


def test_a_revoked_api_key_is_refused_once_the_cache_time_has_passed(auth_server, api):
    redis_url, prefix = api.redis
    delete_keys(redis_url, prefix)
    tokens = user_tokens(auth_server, client=auth_server.user_app, redirect_uri=USER_APP_REDIRECT_URI,
                         email=EMAIL, password=PASSWORD, scope=f"{SCOPE} keys:manage")
    manage = {"Authorization": f"Bearer {tokens['access_token']}"}
    created = requests.post(auth_server.url("/v1/api-keys"), json={"name": "e2e", "scopes": ["read:users"]},
                            headers=manage, timeout=10)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert api_statuses(api, key, times=6) == [200] * 6  # both workers hold an active answer now

    revoked = requests.delete(auth_server.url(f"/v1/api-keys/{created.json()['id']}"), headers=manage, timeout=10)
    assert revoked.status_code == 204
    time.sleep(API_KEY_CACHE_SECONDS + 0.5)
    headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
    refusals = [requests.get(api.url("/v1/users"), headers=headers, timeout=10) for _ in range(6)]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refusals] == [(401, "INVALID_API_KEY")] * 6
    delete_keys(redis_url, prefix)


def this_hour_usage(auth_server, access_token: str) -> dict:
    """The last hourly entry of the account's GET /v1/usage on the server."""
    response = requests.get(auth_server.url("/v1/usage"), headers={"Authorization": f"Bearer {access_token}"},
                            timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["hourly"][-1]


ROOT = Path(__file__).resolve().parents[2]
README_EXAMPLES = {"curl": ["bash", "examples/quickstart.sh"], "javascript": ["node", "examples/quickstart.mjs"]}


@pytest.mark.parametrize("command", README_EXAMPLES.values(), ids=README_EXAMPLES.keys())
def test_the_readme_quick_start_examples_work_against_the_api(auth_server, api, command):
    program, example = command
    assert (ROOT / example).read_text() in (ROOT / "README.md").read_text(), f"the README does not show {example}"
    if shutil.which(program) is None:
        unavailable(f"{program} is not installed")
    client_id, client_secret = auth_server.client
    env = {**os.environ, "AUTH": auth_server.base_url, "API": api.base_url,
           "CLIENT_ID": client_id, "CLIENT_SECRET": client_secret}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    users = json.loads(result.stdout.strip().splitlines()[-1])
    users = users["data"] if isinstance(users, dict) else users
    assert [user["id"] for user in users] == [client_id]


def test_several_workers_without_redis_refuse_to_start(tmp_path):
    result = run_cli("api", "serve", "--port", free_port(), "--workers", "2", env=authserver_env(), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "AUTHSERVER_REDIS_URL" in result.stderr
