"""Plan-based rate limits (authserver.resource.ratelimit): memory storage on a fake clock, the
shared Redis across two limiter instances ("workers"), and Redis outages with a private
redis-server that the tests stop and start again."""

from __future__ import annotations

import ast
import logging
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from authserver.resource import ratelimit
from authserver.resource.ratelimit import (
    PLANS,
    PlanLimits,
    RateLimiter,
    StorageConfigError,
    check_storage_for_workers,
    custom_limits,
    rate_limit_error_body,
)

from ..stores import RedisServer, delete_keys, free_port, require_redis, unique_prefix

T0 = 1_800_000_000 + 10  # 10 s into a minute and into an hour (1_800_000_000 is a whole hour)
ENVELOPE_CODE = "RATE_LIMIT_EXCEEDED"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    """time.time() under our control: the memory storage's windows are aligned to the clock."""
    fake = Clock(T0)
    monkeypatch.setattr(time, "time", fake)
    return fake


@pytest.fixture
def limiter(clock):
    limiter = RateLimiter("memory://")
    yield limiter
    limiter.close()


def hits(limiter, n, account="user_1", plan="free", custom=None):
    return [limiter.hit(account, plan, custom) for _ in range(n)]


def assert_refused(result):
    assert not result.allowed
    assert result.status == 429
    assert result.retry_after >= 1
    assert result.headers["Retry-After"] == str(result.retry_after)
    assert result.headers["X-RateLimit-Remaining"] == "0"
    assert result.body["error"]["code"] == ENVELOPE_CODE
    assert result.body["error"]["status"] == 429


# -- plans -----------------------------------------------------------------------------------


def test_plan_table_is_the_products():
    assert PLANS == {
        "free": PlanLimits(per_hour=1_000, per_minute=50),
        "pro": PlanLimits(per_hour=10_000, per_minute=500),
        "enterprise": PlanLimits(per_hour=None, per_minute=None),
    }


def test_free_burst_refuses_request_51_with_retry_after_and_envelope(limiter):
    results = hits(limiter, 51)
    assert all(r.allowed for r in results[:50])
    assert_refused(results[50])
    # All 50 fell in the window that rolls 50 s from now: one request fits just after that.
    assert results[50].retry_after == 51
    assert set(results[50].body) == {"error"}
    assert set(results[50].body["error"]) == {"code", "message", "status"}


def test_retry_after_is_honest(limiter, clock):
    refused = hits(limiter, 51)[50]
    clock.advance(refused.retry_after - 1)
    assert not limiter.hit("user_1", "free").allowed
    clock.advance(1)
    assert limiter.hit("user_1", "free").allowed


def test_retry_after_while_the_previous_minute_fades(limiter, clock):
    hits(limiter, 50)
    clock.advance(60)  # the 50 now weigh 50/60 of themselves: floor(41.67) = 41, so 9 fit
    results = hits(limiter, 10)
    assert [r.allowed for r in results] == [True] * 9 + [False]
    # One more fits once 50 * (50 - t) / 60 < 41, i.e. t > 0.8 s.
    assert results[9].retry_after == 1
    assert results[9].headers["X-RateLimit-Reset"] == str(T0 + 60 + 50 + 60)
    clock.advance(0.7)
    assert not limiter.hit("user_1", "free").allowed
    clock.advance(0.3)
    assert limiter.hit("user_1", "free").allowed


def test_hourly_limit_refuses_request_6(limiter, clock):
    custom = PlanLimits(per_hour=5, per_minute=100)
    results = []
    for _ in range(6):  # one every 10 s: the minute never binds
        results.append(limiter.hit("ent_1", "enterprise", custom))
        clock.advance(10)
    assert all(r.allowed for r in results[:5])
    assert_refused(results[5])
    assert results[5].headers["X-RateLimit-Limit"] == "5"  # the hour is what refused
    assert results[5].retry_after > 60


def test_pro_burst_is_500_per_minute(limiter):
    results = hits(limiter, 501, plan="pro")
    assert all(r.allowed for r in results[:500])
    assert_refused(results[500])
    assert results[0].headers["X-RateLimit-Limit"] == "500"
    assert results[0].headers["X-RateLimit-Remaining"] == "499"


def test_pro_hourly_limit_is_10000(limiter, clock):
    allowed = 0
    for _ in range(25):  # 25 minutes of 500 requests: the hour stops it at 10,000
        allowed += sum(r.allowed for r in hits(limiter, 500, plan="pro"))
        clock.advance(120)  # past the sliding minute's memory
    assert allowed == 10_000


def test_enterprise_without_custom_limits_is_never_refused(limiter):
    results = hits(limiter, 2_000, plan="enterprise")
    assert all(r.allowed for r in results)
    assert results[-1].headers["X-RateLimit-Limit"] == "unlimited"
    assert results[-1].headers["X-RateLimit-Remaining"] == "unlimited"
    assert int(results[-1].headers["X-RateLimit-Reset"]) == T0
    assert not limiter.counters.storage.storage  # nothing counted


def test_enterprise_custom_burst(limiter):
    results = hits(limiter, 4, plan="enterprise", custom=PlanLimits(per_hour=1_000, per_minute=3))
    assert [r.allowed for r in results] == [True, True, True, False]
    assert results[3].headers["X-RateLimit-Limit"] == "3"


def test_custom_limits_apply_to_enterprise_only_and_unknown_plans_get_free(limiter):
    tiny = PlanLimits(per_hour=1, per_minute=1)
    assert hits(limiter, 2, account="f", plan="free", custom=tiny)[1].allowed
    results = hits(limiter, 51, account="x", plan="platinum")
    assert results[49].allowed and not results[50].allowed


def test_headers_describe_the_limit_closest_to_running_out(limiter):
    results = hits(limiter, 5)
    assert [r.headers["X-RateLimit-Limit"] for r in results] == ["50"] * 5
    assert [r.headers["X-RateLimit-Remaining"] for r in results] == ["49", "48", "47", "46", "45"]
    # Epoch seconds: the minute's counter rolls 50 s from now, then fades out over one more minute.
    assert {r.headers["X-RateLimit-Reset"] for r in results} == {str(T0 + 110)}


def test_headers_switch_to_the_hour_when_it_has_fewer_left(limiter, clock):
    custom = PlanLimits(per_hour=4, per_minute=3)
    first, second = hits(limiter, 2, account="ent", plan="enterprise", custom=custom)
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("3", "2")
    assert (second.headers["X-RateLimit-Limit"], second.headers["X-RateLimit-Remaining"]) == ("3", "1")
    clock.advance(120)
    third = limiter.hit("ent", "enterprise", custom)  # minute: 2 left, hour: 1 left
    assert (third.headers["X-RateLimit-Limit"], third.headers["X-RateLimit-Remaining"]) == ("4", "1")
    # The hour's counter started at T0: it rolls at the hour (3590 s after T0), then fades out.
    assert third.headers["X-RateLimit-Reset"] == str(T0 + 3590 + 3600)


def test_one_account_shares_its_count_across_credentials(limiter):
    account_of = {"client_abc": "user_7", "tdk_key_of_user_7": "user_7"}
    results = []
    for i in range(51):
        credential = "client_abc" if i % 2 else "tdk_key_of_user_7"
        results.append(limiter.hit(account_of[credential], "free"))
    assert all(r.allowed for r in results[:50])
    assert not results[50].allowed


def test_accounts_are_counted_apart(limiter):
    hits(limiter, 51, account="user_a")
    other = limiter.hit("user_b", "free")
    assert other.allowed
    assert other.headers["X-RateLimit-Remaining"] == "49"


def test_a_refused_minute_does_not_consume_the_hour(limiter, clock):
    custom = PlanLimits(per_hour=5, per_minute=3)
    results = hits(limiter, 20, account="ent", plan="enterprise", custom=custom)
    assert sum(r.allowed for r in results) == 3
    clock.advance(120)  # the minute has forgotten; the hour has 3 of 5 used, not 20
    later = hits(limiter, 3, account="ent", plan="enterprise", custom=custom)
    assert [r.allowed for r in later] == [True, True, False]
    assert later[2].headers["X-RateLimit-Limit"] == "5"


def test_a_refused_hour_does_not_consume_the_minute(limiter):
    custom = PlanLimits(per_hour=2, per_minute=3)
    results = hits(limiter, 5, account="ent", plan="enterprise", custom=custom)
    assert [r.allowed for r in results] == [True, True, False, False, False]
    assert results[2].headers["X-RateLimit-Limit"] == "2"
    # The minute counted the two allowed requests only: 1 of 3 left, not 0.
    window = limiter.counters.storage.get_sliding_window(ratelimit._counted(custom)[0].key_for("ent"), 60)
    assert window[2] == 2


def test_concurrent_hits_never_exceed_the_limit_in_memory(limiter):
    custom = PlanLimits(per_hour=60, per_minute=50)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: limiter.hit("ent", "enterprise", custom), range(400)))
    assert sum(r.allowed for r in results) == 50


def test_error_body_helper():
    assert rate_limit_error_body("slow down") == {
        "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down", "status": 429}
    }


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_bad_custom_limits_are_refused(value):
    with pytest.raises(ValueError):
        PlanLimits(per_hour=value, per_minute=None)


# -- custom limits from a token's rate_limits claim ----------------------------------------------


@pytest.mark.parametrize(("rate_limits", "expected"), [
    (None, None),
    ({"per_hour": 5000, "per_minute": 100}, PlanLimits(per_hour=5000, per_minute=100)),
    ({"per_hour": 5000}, PlanLimits(per_hour=5000, per_minute=None)),
    ({"per_minute": 100, "per_hour": None}, PlanLimits(per_hour=None, per_minute=100)),
    ({}, PlanLimits(per_hour=None, per_minute=None)),
])
def test_custom_limits_from_a_rate_limits_claim(rate_limits, expected):
    assert custom_limits(rate_limits) == expected


@pytest.mark.parametrize("rate_limits", [
    [5000], "5000", 5000, {"per_hour": 0}, {"per_hour": -5}, {"per_minute": 2.5}, {"per_hour": "10"},
    {"per_hour": False}, {"per_day": 10}, {"per_hour": 10, "burst": 1},
], ids=repr)
def test_custom_limits_refuse_a_bad_shape(rate_limits):
    with pytest.raises(ValueError):
        custom_limits(rate_limits)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "workers", "ok"),
    [
        ("memory://", 1, True),
        (None, 1, True),
        ("memory://", 2, False),
        (None, 4, False),
        ("redis://127.0.0.1:6379/0", 1, True),
        ("redis://127.0.0.1:6379/0", 16, True),
    ],
)
def test_check_storage_for_workers(url, workers, ok):
    if ok:
        check_storage_for_workers(url, workers)
    else:
        with pytest.raises(StorageConfigError, match=rf"per process: with {workers} workers.*AUTHSERVER_REDIS_URL"):
            check_storage_for_workers(url, workers)


@pytest.mark.parametrize("url", ["mysql://localhost/db", "memcached://localhost:11211", "redis://:bad port"])
def test_unusable_storage_urls_fail_at_construction(url):
    with pytest.raises(StorageConfigError):
        RateLimiter(url)


def test_importable_without_the_server():
    forbidden = ("sqlalchemy", "authserver.storage", "authserver.app", "authserver.oauth",
                 "authserver.settings", "authserver.web")
    code = ("import sys, authserver.resource.ratelimit; "
            f"print([m for m in sys.modules if m.startswith({forbidden!r})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    tree = ast.parse(Path(ratelimit.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"flask", "sqlalchemy", "authserver"}


# -- shared Redis: two workers --------------------------------------------------------------


@pytest.fixture
def shared_redis():
    url = require_redis()
    prefix = unique_prefix()
    yield url, prefix
    delete_keys(url, prefix)


def test_burst_holds_across_two_workers_sharing_redis(shared_redis):
    url, prefix = shared_redis
    workers = [RateLimiter(url, key_prefix=prefix), RateLimiter(url, key_prefix=prefix)]
    try:
        results = [workers[i % 2].hit("user_shared", "free") for i in range(51)]
        assert all(r.allowed and not r.failed_open for r in results[:50])
        assert [r.headers["X-RateLimit-Remaining"] for r in results[:3]] == ["49", "48", "47"]
        assert_refused(results[50])
        assert_refused(workers[0].hit("user_shared", "free"))
        assert workers[0].hit("user_other", "free").allowed
        # One window starts at its first request in Redis: the minute rolls 60 s later.
        assert 55 <= results[50].retry_after <= 61
    finally:
        for worker in workers:
            worker.close()
    assert delete_keys(url, prefix) > 0  # the counters were under this run's prefix


# -- outages ---------------------------------------------------------------------------------


def warnings_from(caplog):
    return [r for r in caplog.records if r.name == ratelimit.__name__ and r.levelno == logging.WARNING]


def test_closed_port_fails_open_once_logged_without_raising(caplog):
    limiter = RateLimiter(f"redis://127.0.0.1:{free_port()}/0", recheck_seconds=0.05)
    caplog.set_level(logging.INFO, logger=ratelimit.__name__)
    try:
        for _ in range(5):
            started = time.perf_counter()
            result = limiter.hit("user_1", "free")
            assert time.perf_counter() - started < 0.5
            assert result.allowed and result.failed_open
            assert result.headers["X-RateLimit-Limit"] == "50"
            time.sleep(0.06)  # past recheck_seconds: every request tries Redis again
        assert limiter.failed_open == 5
        assert limiter.outages == 1
        assert len(warnings_from(caplog)) == 1
    finally:
        limiter.close()


def test_a_silent_redis_costs_at_most_one_socket_timeout():
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        limiter = RateLimiter(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", socket_timeout=0.2,
                              recheck_seconds=30)
        try:
            started = time.perf_counter()
            assert limiter.hit("user_1", "free").failed_open
            assert time.perf_counter() - started < 1.0
            started = time.perf_counter()
            for _ in range(100):  # within recheck_seconds: Redis is not tried again
                assert limiter.hit("user_1", "free").allowed
            assert time.perf_counter() - started < 0.1
            assert limiter.failed_open == 101
        finally:
            limiter.close()


def test_redis_client_is_configured_for_bounded_latency():
    limiter = RateLimiter(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.3)
    try:
        kwargs = limiter.counters.pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.3
        assert kwargs["socket_connect_timeout"] == 0.3
        assert kwargs["retry"].get_retries() == 0  # one attempt; the outage policy takes over
    finally:
        limiter.close()


def test_outage_and_recovery_with_a_private_redis(caplog):
    server = RedisServer().start()
    limiter = RateLimiter(server.url, key_prefix=unique_prefix(), recheck_seconds=0.1)
    caplog.set_level(logging.INFO, logger=ratelimit.__name__)
    try:
        before = hits(limiter, 3)
        assert [r.headers["X-RateLimit-Remaining"] for r in before] == ["49", "48", "47"]
        assert limiter.failed_open == 0

        server.stop()
        during = []
        for _ in range(10):
            started = time.perf_counter()
            during.append(limiter.hit("user_1", "free"))
            assert time.perf_counter() - started < 0.5
            time.sleep(0.02)
        assert all(r.allowed and r.failed_open for r in during)
        assert limiter.failed_open == 10
        assert limiter.outages == 1
        assert len(warnings_from(caplog)) == 1

        server.start()  # same port, empty (no persistence): counting starts again
        time.sleep(0.15)  # past recheck_seconds
        after = hits(limiter, 2)
        assert [r.failed_open for r in after] == [False, False]
        assert [r.headers["X-RateLimit-Remaining"] for r in after] == ["49", "48"]
        assert limiter.outages == 1
        assert len(warnings_from(caplog)) == 1
        recovered = [r for r in caplog.records if r.levelno == logging.INFO and r.name == ratelimit.__name__]
        assert len(recovered) == 1 and "answers again" in recovered[0].getMessage()
    finally:
        limiter.close()
        server.stop()
