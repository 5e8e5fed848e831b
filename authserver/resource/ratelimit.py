"""Plan-based rate limits for resource services, counted per account.

Importable without the server: this module uses only the standard library, ``limits`` and (for
a ``redis://`` storage) ``redis``; it never imports Flask, SQLAlchemy or the server's settings.

Plans (DESIGN.md, "Rate limits"): free 1,000 requests/hour with a burst of 50/minute; pro
10,000/hour with 500/minute; enterprise unlimited unless the account has custom limits, which
the caller passes in (``PlanLimits(per_hour=N, per_minute=M)``; either may be ``None``, meaning
no limit of that kind); ``custom_limits(principal.rate_limits)`` makes them from the token's
``rate_limits`` claim (or introspection's field). An unknown plan gets the free plan's limits
(fail towards the smallest plan). The key is the account id, so all credentials of one account share the count.

Strategy: the *sliding window counter* (``limits``' layout; the arithmetic in
``sliding_window``). It keeps two counters per limit and account (this window, the previous
one) and weights the previous one by how much of it still overlaps the last N seconds. Why not
the others:

- fixed window lets a client send 2x the limit across a window edge (100 requests in one second
  on the free plan's 50/minute burst), which is what a burst limit exists to stop;
- moving window is exact but stores one timestamp per request: 10,000 entries per pro account
  and hour, and far more for large custom enterprise limits, with an O(limit) check per request.

The sliding window counter is O(1) in memory and time per account and keeps the edge error small
(it assumes the previous window's requests were spread evenly).

Both limits must hold, and a refused request consumes nothing from either limit. Per request,
one atomic step reads both windows, refuses (charging nothing) if either is exhausted, and
otherwise takes one from each: with Redis, one Lua script call (one round trip; Redis runs a
script alone, so concurrent workers can never together exceed a limit); in memory, under one
lock. Unlimited accounts never reach the storage.

Headers (``RateLimitResult.headers``), as GitHub's ``X-RateLimit-*`` users expect:

- they describe the limit closest to running out: the one with the fewest requests remaining
  (on a refusal, the exhausted limit that frees up last);
- ``X-RateLimit-Limit``: that limit's size; ``X-RateLimit-Remaining``: requests left in it
  after this one;
- ``X-RateLimit-Reset``: **Unix epoch seconds** (as GitHub, not the IETF draft's delta seconds)
  at which that limit is back to full if no more requests are made. A sliding window frees
  capacity gradually, so it can be up to two window lengths away;
- on a refusal ``Retry-After``: **seconds from now** (RFC 9110 §10.2.3): the first whole second
  after which one request fits again under every limit (at least 1).

Unlimited accounts get ``X-RateLimit-Limit: unlimited``, ``X-RateLimit-Remaining: unlimited``
and ``X-RateLimit-Reset`` = now (nothing to wait for); nothing is stored for them.

Storage outage policy (fail open, STYLE habit 7): rate limiting protects capacity, it does not
guard access, so when the storage does not answer the request is allowed and the limiter never
raises. It logs one warning when an outage starts and one info line when it ends, and counts
the requests it let through unchecked in ``failed_open`` (and outages in ``outages``). Redis
calls have socket timeouts and no retries, and after a failure the limiter does not try Redis
again for ``recheck_seconds`` (requests in between are allowed at once), so a dead Redis costs
at most one timeout per ``recheck_seconds`` per process. It recovers by itself. While failing
open, headers show the plan's limit, ``Remaining`` equal to it and ``Reset`` = now.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .sliding_window import Limit, MemoryCounters, Window

log = logging.getLogger(__name__)

__all__ = [
    "PLANS",
    "PlanLimits",
    "RateLimitResult",
    "RateLimiter",
    "StorageConfigError",
    "check_storage_for_workers",
    "custom_limits",
    "limits_for",
    "rate_limit_error_body",
]

DEFAULT_STORAGE_URL = "memory://"


@dataclass(frozen=True)
class PlanLimits:
    """Requests allowed per hour and per minute; ``None`` means no limit of that kind."""

    per_hour: int | None
    per_minute: int | None

    def __post_init__(self) -> None:
        for name in ("per_hour", "per_minute"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, not {value!r}")

    @property
    def unlimited(self) -> bool:
        return self.per_hour is None and self.per_minute is None


PLANS: dict[str, PlanLimits] = {
    "free": PlanLimits(per_hour=1_000, per_minute=50),
    "pro": PlanLimits(per_hour=10_000, per_minute=500),
    "enterprise": PlanLimits(per_hour=None, per_minute=None),
}


def limits_for(plan: str, custom: PlanLimits | None = None) -> PlanLimits:
    """The limits that apply: custom limits count for enterprise accounts only; unknown → free."""
    if plan == "enterprise":
        return custom if custom is not None else PLANS["enterprise"]
    return PLANS.get(plan, PLANS["free"])


def custom_limits(rate_limits: Mapping[str, Any] | None) -> PlanLimits | None:
    """The custom limits of a ``rate_limits`` claim or introspection field (``Principal.rate_limits``)
    as ``PlanLimits``, for ``limits_for(plan, custom)``; None when there are none.

    The shape is the server's: an object with only ``per_hour`` / ``per_minute``, each a positive
    integer or null; a missing key or null is no limit of that kind. Anything else raises
    ValueError (fail closed: a mangled limit must never become "unlimited"). ``TokenVerifier``
    already refuses such tokens; this check is for values from elsewhere (introspection)."""
    if rate_limits is None:
        return None
    if not isinstance(rate_limits, Mapping) or not set(rate_limits) <= {"per_hour", "per_minute"}:
        raise ValueError(f"rate_limits must be an object of per_hour / per_minute, not {rate_limits!r}")
    return PlanLimits(per_hour=rate_limits.get("per_hour"), per_minute=rate_limits.get("per_minute"))


def rate_limit_error_body(message: str = "Too many requests: rate limit exceeded") -> dict:
    """The product's error envelope for a 429 (DESIGN.md, "Errors")."""
    return {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": message, "status": 429}}


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    headers: dict[str, str]
    retry_after: int | None = None  # seconds, only on a refusal
    failed_open: bool = False  # allowed because the storage did not answer
    status: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", 200 if self.allowed else 429)

    @property
    def body(self) -> dict | None:
        """The 429 envelope for a refusal, else None."""
        if self.allowed:
            return None
        return rate_limit_error_body(f"Rate limit exceeded; retry in {self.retry_after} seconds")


class StorageConfigError(ValueError):
    """A rate-limit storage setting that cannot work; the message says why, in one line."""


def _is_memory(storage_url: str | None) -> bool:
    return not storage_url or storage_url.startswith("memory://")


def check_storage_for_workers(storage_url: str | None, workers: int) -> None:
    """Refuse in-memory counters with several workers: each would allow the whole limit."""
    if _is_memory(storage_url) and workers > 1:
        raise StorageConfigError(
            f"in-memory rate limits are per process: with {workers} workers each one would allow "
            "the whole limit; set AUTHSERVER_REDIS_URL to a Redis shared by all workers"
        )


class RateLimiter:
    """Checks and counts requests per account. Thread-safe; one per process is enough.

    ``storage_url``: ``memory://`` (one process) or ``redis://host:port/db`` (shared by every
    worker and instance). ``key_prefix`` names the Redis keys. ``socket_timeout`` bounds each
    Redis call and connection attempt; ``recheck_seconds`` is how long to skip Redis after a
    failure. A bad URL raises ``StorageConfigError`` here, at start-up, never later.
    """

    def __init__(
        self,
        storage_url: str | None = DEFAULT_STORAGE_URL,
        *,
        key_prefix: str = "authserver-ratelimit",
        socket_timeout: float = 0.25,
        recheck_seconds: float = 1.0,
    ) -> None:
        self.storage_url = storage_url or DEFAULT_STORAGE_URL
        self.recheck_seconds = recheck_seconds
        self.failed_open = 0  # requests allowed unchecked because the storage failed
        self.outages = 0
        self._down_since: float | None = None
        self._next_attempt = 0.0
        self._state_lock = threading.Lock()
        self.counters = _make_counters(self.storage_url, key_prefix, socket_timeout)

    def close(self) -> None:
        self.counters.close()

    def storage_answers(self) -> bool:
        """Whether the storage answers a PING now, on a connection of its own (within the socket
        timeout); memory storage always does. For readiness probes: `hit` never needs it."""
        pool = getattr(self.counters, "pool", None)
        if pool is None:
            return True
        connection = pool.make_connection()
        try:
            connection.send_command("PING")
            return connection.read_response() in (b"PONG", "PONG")
        finally:
            connection.disconnect()

    def hit(self, account_id: str, plan: str, custom: PlanLimits | None = None) -> RateLimitResult:
        """Count one request of ``account_id`` and say whether it is allowed. Never raises."""
        limits = limits_for(plan, custom)
        if limits.unlimited:
            return RateLimitResult(True, _unlimited_headers())
        counted = _counted(limits)
        if self._skipping_storage():
            return self._fail_open(counted)
        try:
            allowed, windows = self.counters.take(account_id, counted)
        except Exception as exc:  # deliberate: any storage failure → fail open (module docstring)
            self._storage_failed(exc)
            return self._fail_open(counted)
        self._storage_answered()
        return _allowed(windows) if allowed else _refused(windows)

    # -- outage bookkeeping -------------------------------------------------------------------

    def _skipping_storage(self) -> bool:
        with self._state_lock:
            return self._down_since is not None and time.monotonic() < self._next_attempt

    def _storage_failed(self, exc: Exception) -> None:
        with self._state_lock:
            self._next_attempt = time.monotonic() + self.recheck_seconds
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            self.outages += 1
        log.warning("rate-limit storage %s is not answering (%s: %s); allowing requests unchecked "
                    "(fail open) until it answers again", _redacted(self.storage_url), type(exc).__name__, exc)

    def _storage_answered(self) -> None:
        if self._down_since is None:  # the common case, without the lock: a stale read only delays the log line
            return
        with self._state_lock:
            if self._down_since is None:
                return
            seconds, self._down_since = time.monotonic() - self._down_since, None
        log.info("rate-limit storage %s answers again after %.1f s; limits enforced again",
                 _redacted(self.storage_url), seconds)

    def _fail_open(self, counted: tuple[Limit, ...]) -> RateLimitResult:
        with self._state_lock:
            self.failed_open += 1
        limit = min(each.amount for each in counted)
        return RateLimitResult(True, _headers(limit, limit, time.time()), failed_open=True)


def _make_counters(url: str, key_prefix: str, socket_timeout: float):
    if _is_memory(url):
        return MemoryCounters()
    if not url.startswith(("redis://", "rediss://", "redis+unix://")):
        raise StorageConfigError(f"rate-limit storage must be memory:// or redis://…, not {url.split(':', 1)[0]!r}")
    from redis import ConnectionPool
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from .redis_counters import RedisCounters

    try:
        pool = ConnectionPool.from_url(
            url.replace("redis+unix://", "unix://", 1),
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # deliberate: one attempt, the outage policy handles failure
        )
    except Exception as exc:  # a malformed URL: a start-up error with one clear line
        raise StorageConfigError(f"rate-limit storage URL is not usable: {exc}") from exc
    return RedisCounters(pool, key_prefix)


@functools.lru_cache(maxsize=256)
def _counted(limits: PlanLimits) -> tuple[Limit, ...]:
    """The limits to count, minute first; made once per plan."""
    return tuple(limit for limit in (
        Limit(limits.per_minute, 60, "minute") if limits.per_minute else None,
        Limit(limits.per_hour, 3600, "hour") if limits.per_hour else None,
    ) if limit is not None)


def _allowed(windows: list[Window]) -> RateLimitResult:
    """Headers of the limit with the fewest requests left after this one."""
    after = [w.after_hit() for w in windows]
    window = min(after, key=lambda w: (w.remaining, -w.seconds_until_full()))
    return RateLimitResult(True, _headers(window.limit, window.remaining, time.time() + window.seconds_until_full()))


def _refused(windows: list[Window]) -> RateLimitResult:
    """Headers of the exhausted limit that frees up last."""
    refusing = [w for w in windows if w.remaining < 1] or windows  # `or`: float noise at the exact edge
    window = max(refusing, key=lambda w: w.seconds_until_available())
    # Whole seconds strictly past the moment it fits (at that very moment it is still full);
    # the 1 ms absorbs float noise in the storages' TTLs, which are kept to the millisecond.
    retry_after = math.floor(window.seconds_until_available() + 0.001) + 1
    headers = _headers(window.limit, 0, time.time() + window.seconds_until_full())
    headers["Retry-After"] = str(retry_after)
    return RateLimitResult(False, headers, retry_after=retry_after)


def _headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(math.ceil(reset_at)),
    }


def _unlimited_headers() -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "unlimited",
        "X-RateLimit-Remaining": "unlimited",
        "X-RateLimit-Reset": str(math.ceil(time.time())),
    }


def _redacted(url: str) -> str:
    """The URL without a password, for log lines."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
