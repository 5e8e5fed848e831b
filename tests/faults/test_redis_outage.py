"""Redis stopped under the real server and the real sample API service (a private redis-server,
never the shared one): the API's rate limiting fails open as ratelimit.py documents (requests
allowed, headers showing the full limit), sign-in throttling keeps protecting with a limit in
the process's memory as throttle.py documents, nothing answers 500, and both count in Redis
again once it is back. One worker each, so that the local limit is exactly the limit."""

from __future__ import annotations

import time

import pytest
import redis
import requests

from ..e2e.by_hand import the_form
from ..e2e.processes import ApiService, authserver_env, free_port, running_server
from ..stores import RedisServer
from .deployment import prepare

pytestmark = pytest.mark.e2e

API_AUDIENCE = "http://127.0.0.1:5001"
PREFIX = "faults-ratelimit"
THROTTLE_PREFIX = "authserver-throttle"  # throttle.Throttle's default key prefix
SIGN_IN_LIMIT = 10  # per account per 15 minutes (sign_in_limits.SIGN_IN_PER_ACCOUNT)
BURST = 50  # the free plan's per-minute limit
DEADLINE = 30  # seconds: a bound for what must happen, never a measured speed


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    deployment = prepare(tmp_path_factory, f"sqlite:///{tmp_path_factory.mktemp('redis-db') / 'a.db'}",
                         "redis-outage", AUTHSERVER_REDIS_URL=redis_server.url, AUTHSERVER_API_AUDIENCE=API_AUDIENCE)
    with running_server(deployment.workspace, workers=1) as server:
        api = ApiService(env=authserver_env(
            AUTHSERVER_ISSUER=server.base_url, AUTHSERVER_API_AUDIENCE=API_AUDIENCE,
            AUTHSERVER_REDIS_URL=redis_server.url, AUTHSERVER_RATELIMIT_PREFIX=PREFIX,
        ), cwd=tmp_path_factory.mktemp("redis-api"), port=free_port(), workers=1)
        api.start()
        try:
            api.wait_until_healthy()
            yield deployment, server, api
        finally:
            api.stop()


def _keys(redis_server, prefix: str) -> int:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        return len(list(client.scan_iter(match=f"{prefix}*")))
    finally:
        client.close()


def _wrong_sign_ins(server, email: str, count: int) -> list[int]:
    with requests.Session() as browser:
        form = the_form(browser.get(server.url("/login"), timeout=10))
        return [browser.post(form.action, data={**form.hidden, "email": email, "password": "not the password"},
                             allow_redirects=False, timeout=10).status_code for _ in range(count)]


def _api_call(api, token: str) -> requests.Response:
    response = requests.get(api.url("/v1/users/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code < 500, response.text
    return response


def test_redis_outage_fails_open_for_rate_limits_and_closed_to_local_counting_for_sign_in(redis_server, stack):
    deployment, server, api = stack
    token = requests.post(server.url("/oauth/token"), auth=deployment.service, timeout=10,
                          data={"grant_type": "client_credentials", "scope": "read:users"}).json()["access_token"]

    # Redis up: both count there.
    assert _wrong_sign_ins(server, "first@example.com", SIGN_IN_LIMIT + 1) == [401] * SIGN_IN_LIMIT + [429]
    assert _keys(redis_server, THROTTLE_PREFIX) > 0
    first = _api_call(api, token)
    assert first.status_code == 200 and int(first.headers["X-RateLimit-Remaining"]) < BURST
    assert _keys(redis_server, PREFIX) > 0

    redis_server.stop()
    # The rate limit fails open: more than the burst passes, each answer showing the full limit.
    outage = [_api_call(api, token) for _ in range(BURST + 10)]
    assert {response.status_code for response in outage} == {200}
    assert {response.headers["X-RateLimit-Remaining"] for response in outage} == {str(BURST)}
    # Sign-in throttling still holds, counted in the server's memory.
    statuses = _wrong_sign_ins(server, "second@example.com", SIGN_IN_LIMIT + 1)
    assert statuses == [401] * SIGN_IN_LIMIT + [429]

    restarted = RedisServer(port=redis_server.port).start()  # the same address, empty (no persistence)
    try:
        deadline = time.monotonic() + DEADLINE
        while int(_api_call(api, token).headers["X-RateLimit-Remaining"]) >= BURST:  # counting again
            assert time.monotonic() < deadline, "the API's rate limit never counted in Redis again"
            time.sleep(0.2)
        assert _keys(restarted, PREFIX) > 0
        deadline = time.monotonic() + DEADLINE
        while _keys(restarted, THROTTLE_PREFIX) == 0:
            assert _wrong_sign_ins(server, f"third-{time.monotonic_ns()}@example.com", 1) == [401]
            assert time.monotonic() < deadline, "sign-in throttling never counted in Redis again"
            time.sleep(0.2)
    finally:
        restarted.stop()
    assert "Traceback" not in server.stderr() + api.stderr()
