"""The rate limiter on real Redis (authserver.resource.redis_counters): one script call per
request, atomic under concurrency across workers, refusals that take nothing, the window
arithmetic done in Lua agreeing with the Python that writes the headers, keys under the
configured prefix, and a script cache that Redis lost."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.connection import AbstractConnection

from authserver.resource.ratelimit import PlanLimits, RateLimiter, _counted

from ..stores import RedisServer, delete_keys, free_port, require_redis, unique_prefix


@pytest.fixture
def shared():
    """(url, prefix, a plain client) for the shared test Redis; this test's keys deleted after."""
    url, prefix = require_redis(), unique_prefix()
    client = redis.Redis.from_url(url)
    yield url, prefix, client
    client.close()
    delete_keys(url, prefix)


@pytest.fixture
def limiter(shared):
    url, prefix, _ = shared
    limiter = RateLimiter(url, key_prefix=prefix)
    yield limiter
    limiter.close()


def key(prefix: str, account: str, amount: int, granularity: str) -> str:
    """The current window's key, as ``limits``' sliding window counter names it."""
    return f"{prefix}:{{ratelimit/{account}/{amount}/1/{granularity}}}"


def count(client, name: str) -> int:
    return int(client.get(name) or 0)


@pytest.fixture
def commands_sent(monkeypatch):
    """How many commands the limiter sent to Redis (every one goes through send_packed_command)."""
    sent = []
    real = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


# -- one round trip ----------------------------------------------------------------------------


def test_one_round_trip_per_request(limiter, commands_sent):
    limiter.hit("user_0", "free")  # connects: redis-py names the client (CLIENT SETINFO), once
    commands_sent.clear()
    for expected in range(1, 6):
        assert limiter.hit("user_1", "free").allowed  # two limits: minute and hour
        assert len(commands_sent) == expected
    # EVALSHA sha numkeys, then 4 keys and 4 arguments: one command for both limits.
    assert all(command[0].startswith(b"*11\r\n$7\r\nEVALSHA\r\n") for command in commands_sent)


def test_unlimited_accounts_never_call_redis(limiter, commands_sent):
    for _ in range(20):
        assert limiter.hit("ent_1", "enterprise").allowed
    assert commands_sent == []


def test_unlimited_accounts_need_no_redis_at_all():
    limiter = RateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    try:
        results = [limiter.hit("ent_1", "enterprise") for _ in range(20)]
    finally:
        limiter.close()
    assert all(r.allowed and not r.failed_open for r in results)
    assert (limiter.failed_open, limiter.outages) == (0, 0)


# -- atomic: a refusal takes nothing, concurrency never exceeds a limit -------------------------


def test_a_refusal_takes_nothing_from_either_limit(limiter, shared):
    _, prefix, client = shared
    custom = PlanLimits(per_hour=5, per_minute=3)
    results = [limiter.hit("ent", "enterprise", custom) for _ in range(10)]
    assert [r.allowed for r in results] == [True] * 3 + [False] * 7
    assert results[3].headers["X-RateLimit-Limit"] == "3"  # the minute refused
    assert count(client, key(prefix, "ent", 5, "hour")) == 3  # not 10
    assert count(client, key(prefix, "ent", 3, "minute")) == 3


def test_a_refused_hour_takes_nothing_from_the_minute(limiter, shared):
    _, prefix, client = shared
    custom = PlanLimits(per_hour=2, per_minute=50)
    results = [limiter.hit("ent", "enterprise", custom) for _ in range(6)]
    assert [r.allowed for r in results] == [True, True, False, False, False, False]
    assert results[2].headers["X-RateLimit-Limit"] == "2"
    assert count(client, key(prefix, "ent", 50, "minute")) == 2


@pytest.mark.parametrize(("custom", "allowed"), [
    (PlanLimits(per_hour=60, per_minute=50), 50),  # the minute binds
    (PlanLimits(per_hour=30, per_minute=50), 30),  # the hour binds
])
def test_concurrent_hits_from_two_workers_never_exceed_a_limit(shared, custom, allowed):
    url, prefix, client = shared
    workers = [RateLimiter(url, key_prefix=prefix), RateLimiter(url, key_prefix=prefix)]
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: workers[i % 2].hit("ent", "enterprise", custom), range(300)))
    finally:
        for worker in workers:
            worker.close()
    assert not any(r.failed_open for r in results)
    assert sum(r.allowed for r in results) == allowed
    # Both counters hold exactly the requests allowed: no refused request took from either.
    assert count(client, key(prefix, "ent", 50, "minute")) == allowed
    assert count(client, key(prefix, "ent", custom.per_hour, "hour")) == allowed


# -- headers -------------------------------------------------------------------------------------


def test_headers_of_the_free_burst(limiter):
    started = time.time()
    results = [limiter.hit("user_h", "free") for _ in range(51)]
    assert [r.headers["X-RateLimit-Remaining"] for r in results[:3]] == ["49", "48", "47"]
    assert {r.headers["X-RateLimit-Limit"] for r in results} == {"50"}
    # The minute's window started with the first request: it rolls 60 s later, then fades out.
    assert started + 119 <= int(results[0].headers["X-RateLimit-Reset"]) <= time.time() + 121
    assert results[49].allowed and results[49].headers["X-RateLimit-Remaining"] == "0"
    refused = results[50]
    assert not refused.allowed and refused.status == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 59 <= refused.retry_after <= 61 and refused.headers["Retry-After"] == str(refused.retry_after)
    assert refused.body["error"]["code"] == "RATE_LIMIT_EXCEEDED"


# -- the window arithmetic in Lua ------------------------------------------------------------------


def test_a_window_with_less_than_its_length_left_rolls_and_is_weighted(limiter, shared):
    _, prefix, client = shared
    current = key(prefix, "user_r", 50, "minute")
    client.set(current, 40, px=31_000)  # 31 s left of its two minutes: it is due to roll
    result = limiter.hit("user_r", "free")
    # 40 requests weighing 31/60 of themselves: floor(20.67) = 20 used, plus this one.
    assert result.headers["X-RateLimit-Remaining"] == "29"
    assert count(client, current + "/-1") == 40 and 30_000 < client.pttl(current + "/-1") <= 31_000
    assert count(client, current) == 1 and client.pttl(current) > 60_000


def test_a_fading_previous_window_refuses_until_it_has_faded_enough(limiter, shared):
    _, prefix, client = shared
    current = key(prefix, "user_f", 50, "minute")
    client.set(current + "/-1", 50, px=59_000)  # weighs floor(50 * 59/60) = 49: room for one
    assert limiter.hit("user_f", "free").allowed
    refused = limiter.hit("user_f", "free")
    assert not refused.allowed
    assert refused.retry_after == 1  # 49 + 1 < 50 once the 50 weigh less than 48.x, in 0.2 s
    time.sleep(refused.retry_after)
    assert limiter.hit("user_f", "free").allowed


@pytest.mark.parametrize(("previous", "previous_ttl", "current"), [
    (0, 0, 0), (0, 0, 49), (0, 0, 50), (50, 59_000, 0), (50, 59_000, 1), (100, 30_500, 0),
    (100, 29_500, 0), (40, 45_000, 19), (40, 45_000, 20), (7, 1_000, 49),
])
def test_lua_decides_as_the_python_arithmetic_reads_it(limiter, shared, previous, previous_ttl, current):
    _, prefix, client = shared
    name = key(prefix, "user_p", 50, "minute")
    if previous:
        client.set(name + "/-1", previous, px=previous_ttl)
    if current:
        client.set(name, current, px=100_000)
    allowed, windows = limiter.counters.take("user_p", _counted(PlanLimits(per_hour=None, per_minute=50)))
    (window,) = windows
    assert (window.previous, window.current) == (previous, current)
    assert allowed == (window.remaining >= 1)
    assert count(client, name) == current + allowed


def test_keys_are_per_account_under_the_prefix(limiter, shared):
    _, prefix, client = shared
    limiter.hit("user_a", "free")
    limiter.hit("user_b", "pro")
    assert sorted(name.decode() for name in client.scan_iter(match=f"{prefix}:*")) == sorted([
        key(prefix, "user_a", 50, "minute"), key(prefix, "user_a", 1000, "hour"),
        key(prefix, "user_b", 500, "minute"), key(prefix, "user_b", 10000, "hour"),
    ])


# -- Redis itself --------------------------------------------------------------------------------


def test_a_redis_that_lost_its_scripts_gets_the_script_again():
    server = RedisServer().start()
    limiter = RateLimiter(server.url, key_prefix=unique_prefix())
    client = redis.Redis.from_url(server.url)
    try:
        assert limiter.hit("user_1", "free").headers["X-RateLimit-Remaining"] == "49"
        client.script_flush()
        again = [limiter.hit("user_1", "free") for _ in range(2)]
        assert [r.headers["X-RateLimit-Remaining"] for r in again] == ["48", "47"]
        assert not any(r.failed_open for r in again) and limiter.outages == 0
    finally:
        client.close()
        limiter.close()
        server.stop()


def test_a_forked_worker_never_uses_the_parents_connection(limiter):
    assert limiter.hit("user_1", "free").allowed
    (parent_connection,) = limiter.counters._idle
    parent_port = parent_connection._sock.getsockname()[1]
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if it counted on a connection of its own
        ok = limiter.hit("user_1", "free").headers["X-RateLimit-Remaining"] == "48"
        ok = ok and limiter.counters._idle[0]._sock.getsockname()[1] != parent_port
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert limiter.hit("user_1", "free").headers["X-RateLimit-Remaining"] == "47"
    assert limiter.counters._idle == [parent_connection]
