"""An API key rotated while requests with it are flowing, over real HTTP: the sample API service
(`authserver api serve`, two workers, Redis counters) in front of `authserver serve` (two workers).
No request with a valid key, the old one in its grace period or the new one, is ever refused."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ..e2e.processes import ApiService, authserver_env, free_port
from ..stores import delete_keys, require_redis, unique_prefix
from .browser import tokens
from .conftest import serving

pytestmark = pytest.mark.e2e

API_AUDIENCE = "http://127.0.0.1:5001"  # the default AUTHSERVER_API_AUDIENCE
SWITCHING_CLIENTS = 3  # threads that take up the new key as soon as rotation returns it
REQUESTS_BEFORE, REQUESTS_AFTER = 15, 15  # per thread, with the old key, then with the new one
GRACE_SECONDS = 300
DEADLINE = 120  # seconds: the stream stops by then whatever happened


@pytest.fixture(scope="module")
def auth_server(deployment):
    with serving(deployment, AUTHSERVER_API_AUDIENCE=API_AUDIENCE) as server:
        yield server


@pytest.fixture(scope="module")
def api(auth_server, deployment, tmp_path_factory):
    redis_url, prefix = require_redis(), unique_prefix()
    service = ApiService(env=authserver_env(
        AUTHSERVER_ISSUER=auth_server.base_url, AUTHSERVER_API_AUDIENCE=API_AUDIENCE,
        AUTHSERVER_REDIS_URL=redis_url, AUTHSERVER_RATELIMIT_PREFIX=prefix,
        AUTHSERVER_API_CLIENT_ID=deployment.api[0], AUTHSERVER_API_CLIENT_SECRET=deployment.api[1],
        AUTHSERVER_API_KEY_CACHE_SECONDS="1",
    ), cwd=tmp_path_factory.mktemp("races-api"), port=free_port(), workers=2)
    service.start()
    try:
        service.wait_until_healthy()
        yield service
    finally:
        service.stop()
        delete_keys(redis_url, prefix)


class KeyStream:
    """Threads sending GET /v1/users with the current key; each records (key, status) per request."""

    def __init__(self, api, key: str):
        self.api = api
        self.current = key
        self.rotated = threading.Event()
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + DEADLINE

    def send(self, key: str, session: requests.Session) -> None:
        response = session.get(self.api.url("/v1/users"), headers={"Authorization": f"Bearer {key}"}, timeout=30)
        with self.lock:
            self.seen.append((key, response.status_code))

    def switching_client(self, old_key: str) -> None:
        """Uses whatever key is current: the old one until rotation returns the new one."""
        with requests.Session() as session:
            with_new_key = 0
            while with_new_key < REQUESTS_AFTER and time.monotonic() < self.deadline:
                key = self.current
                if self.rotated.is_set() and key == old_key:
                    return  # the rotation failed: nothing new to switch to
                self.send(key, session)
                with_new_key += key != old_key

    def lagging_client(self, old_key: str) -> None:
        """Has not taken up the new key yet: the old one, all along (in its grace period)."""
        with requests.Session() as session:
            while not self.rotated.is_set() and time.monotonic() < self.deadline:
                self.send(old_key, session)
            for _ in range(REQUESTS_AFTER):
                self.send(old_key, session)

    def count(self, key: str) -> int:
        with self.lock:
            return sum(1 for used, _ in self.seen if used == key)


def test_no_request_with_a_valid_key_is_refused_while_the_key_rotates(auth_server, api, deployment):
    access_token = tokens(auth_server, deployment.app, "read:users keys:manage")["access_token"]
    manage = {"Authorization": f"Bearer {access_token}"}
    created = requests.post(auth_server.url("/v1/api-keys"), json={"name": "races", "scopes": ["read:users"]},
                            headers=manage, timeout=10)
    assert created.status_code == 201, created.text
    old_key, key_id = created.json()["key"], created.json()["id"]

    stream = KeyStream(api, old_key)
    with ThreadPoolExecutor(SWITCHING_CLIENTS + 1) as pool:
        running = [pool.submit(stream.switching_client, old_key) for _ in range(SWITCHING_CLIENTS)]
        running.append(pool.submit(stream.lagging_client, old_key))
        while stream.count(old_key) < SWITCHING_CLIENTS * REQUESTS_BEFORE and time.monotonic() < stream.deadline:
            time.sleep(0.05)
        rotated = requests.post(auth_server.url(f"/v1/api-keys/{key_id}/rotate"),
                                json={"grace_period_seconds": GRACE_SECONDS}, headers=manage, timeout=10)
        if rotated.status_code == 201:
            stream.current = rotated.json()["key"]
        stream.rotated.set()
        for future in running:
            future.result()

    assert rotated.status_code == 201, rotated.text
    new_key = rotated.json()["key"]
    refused = [(key == new_key and "new" or "old", status) for key, status in stream.seen if status != 200]
    assert refused == [], refused
    assert stream.count(old_key) >= SWITCHING_CLIENTS * REQUESTS_BEFORE + REQUESTS_AFTER
    assert stream.count(new_key) >= SWITCHING_CLIENTS * REQUESTS_AFTER
