"""Fixtures for tests of the throttles (sign-in, client authentication), run with in-memory
counters or on a private Redis: a module imports them by name, and
`@both_storages` runs a test with each."""

from __future__ import annotations

import pytest
import redis

from .stores import RedisServer

@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(request) -> str:
    """'' (in-memory counters; the default) or, with the parameter "redis", the private Redis, emptied."""
    if getattr(request, "param", "memory") == "memory":
        return ""
    url = request.getfixturevalue("redis_server").url
    store = redis.Redis.from_url(url)
    store.flushall()
    store.close()
    return url


both_storages = pytest.mark.parametrize("redis_url", ["memory", "redis"], indirect=True)


@pytest.fixture
def settings_overrides(settings_overrides, redis_url):
    """Counters in `redis_url`; one trusted proxy, so that tests pick the client address."""
    return {**settings_overrides, "trusted_proxies": 1, "redis_url": redis_url}
