"""Attempt counters for throttling (how many tries of something a key made in a window), on the
`limits` library: in Redis, shared by every worker and instance, when AUTHSERVER_REDIS_URL is
set; else in this process's memory.

Strategy: the *moving window* of `limits`, exact (no burst of twice the limit across a window
edge). It stores one timestamp per counted attempt, which is cheap for limits this small.

Redis outage policy (fail *closed* to local counting, unlike the resource services' rate limits,
which fail open): throttling guards access, so an unreachable Redis must neither raise (a 500)
nor stop the counting. The counters then live in this process's memory until Redis answers
again, so while it is down each process allows the whole limit on its own. One warning is logged
when an outage starts and one info line when it ends. Each Redis call has a short socket timeout
and no retries, and after a failure Redis is left alone for `recheck_seconds`, so a dead Redis
costs at most one timeout per `recheck_seconds` per process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

T = TypeVar("T")


class Throttle:
    """Count attempts per (limit, key). Thread-safe; one per app.

    `storage_url`: a Redis URL (validated by the settings), or None for this process's memory.
    """

    def __init__(self, storage_url: str | None, *, key_prefix: str = "authserver-throttle",
                 socket_timeout: float = 0.25, recheck_seconds: float = 1.0) -> None:
        self.storage_url = storage_url
        self.recheck_seconds = recheck_seconds
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = None
        if storage_url:
            self._shared = MovingWindowRateLimiter(storage_from_string(
                storage_url,
                key_prefix=key_prefix,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),  # one attempt: the outage policy handles failure
                wrap_exceptions=True,  # every Redis failure is a StorageError
            ))
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0

    @property
    def shared(self) -> bool:
        """True while the counts go to Redis (not in an outage, not memory-only)."""
        return self._shared is not None and not self._down

    def acquire(self, limit: RateLimitItem, key: str) -> bool:
        """Count one attempt, unless the limit is reached: then count nothing and return False.
        Atomic in the storage: concurrent attempts never exceed the limit."""
        return self._run(lambda counter: counter.hit(limit, key))

    def allows(self, limit: RateLimitItem, key: str) -> bool:
        """Whether one more attempt fits, counting nothing."""
        return self._run(lambda counter: counter.test(limit, key))

    def reset(self, limit: RateLimitItem, key: str) -> None:
        self._run(lambda counter: counter.clear(limit, key))

    def seconds_until_allowed(self, limit: RateLimitItem, key: str) -> int:
        """Whole seconds until the oldest counted attempt leaves the window (at least 1)."""
        reset_time = self._run(lambda counter: counter.get_window_stats(limit, key).reset_time)
        return max(1, math.ceil(reset_time - time.time()))

    def _run(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        if self._shared is not None and time.monotonic() >= self._retry_at:
            try:
                result = operation(self._shared)
            except StorageError as error:
                self._shared_failed(error.storage_error)
            else:
                self._shared_answered()
                return result
        return operation(self._local)

    def _shared_failed(self, error: Exception) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self.recheck_seconds
            if not self._down:
                self._down = True
                log.warning("throttling: Redis does not answer (%s: %s); counting in this process's "
                            "memory until it does", type(error).__name__, error)

    def _shared_answered(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.info("throttling: Redis answers again; counting there")
