"""The sliding window counters behind ``ratelimit.RateLimiter``: the arithmetic on one window
(``Window``) and the two stores that count, each answering one request with ``take``.

Each limit of an account has two counters: the current window and the previous one (``limits``'
sliding window counter, its layout and key names, so counters in Redis carry over from the code
that used its strategy). In Redis a window starts with its first request and the counter lives
two window lengths; once less than one length is left it becomes the previous one. In memory
the windows are aligned to the clock (``limits``' memory storage). The previous window counts for
the share of it that still overlaps the last N seconds, rounded down:
``floor(previous * previous_ttl / N) + current``.

``take(account_id, limits)`` reads the windows of every limit, allows the request only if each
has room for one more, and then takes one from each; a refused request takes nothing. It does
all of it atomically and returns the decision with the windows as they were before this request.

- ``MemoryCounters`` (here): ``limits``' memory storage, read and taken under one lock (one process).
- ``redis_counters.RedisCounters``: one round trip, a Lua script (EVALSHA) that reads, decides
  and takes (imported only for a Redis storage).
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

from limits.storage import MemoryStorage

NAMESPACE = "ratelimit"


class Limit(NamedTuple):
    """One limit of a plan: `amount` requests per `seconds`."""

    amount: int
    seconds: int
    granularity: str  # "minute" or "hour": part of the key

    def key_for(self, account_id: str) -> str:
        """The current window's counter, named as ``limits``' items name it (the previous one adds "/-1")."""
        return f"{NAMESPACE}/{account_id}/{self.amount}/1/{self.granularity}"


class Window(NamedTuple):
    """One limit's state as read from the storage, with the arithmetic on it (TTLs in seconds).
    A named tuple: four are made per request, and a frozen dataclass costs several times more."""

    limit: int
    seconds: int
    previous: int
    previous_ttl: float
    current: int
    current_ttl: float

    @property
    def remaining(self) -> int:
        used = math.floor(self.previous * self.previous_ttl / self.seconds) + self.current
        return max(0, self.limit - used)

    @property
    def _roll_in(self) -> float:
        """Seconds until this window becomes the previous one (0 when nothing is counted)."""
        return max(0.0, self.current_ttl - self.seconds) if self.current else 0.0

    def seconds_until_available(self) -> float:
        """Earliest time from now at which one more request fits."""
        room = self.limit - 1 - self.current  # what the weighted previous count may reach
        if room >= 0:
            wait = 0.0 if not self.previous else max(0.0, self.previous_ttl - (room + 1) * self.seconds / self.previous)
            if not self.current or wait < self._roll_in:
                return wait
        # After the roll the old window weighs (1 - s/seconds) of at most `limit`: fits right after.
        return self._roll_in

    def after_hit(self) -> Window:
        """This window with one more request counted (a new counter lives two windows)."""
        ttl = self.current_ttl if self.current_ttl > self.seconds else 2.0 * self.seconds
        return self._replace(current=self.current + 1, current_ttl=ttl)

    def seconds_until_full(self) -> float:
        if self.current:
            return self._roll_in + self.seconds
        return self.previous_ttl if self.previous else 0.0


class MemoryCounters:
    """Counters in this process only (``limits``' memory storage); one lock makes take atomic."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self._lock = threading.Lock()

    def take(self, account_id: str, limits: tuple[Limit, ...]) -> tuple[bool, list[Window]]:
        keys = [limit.key_for(account_id) for limit in limits]
        with self._lock:
            windows = [Window(limit.amount, limit.seconds, *self.storage.get_sliding_window(key, limit.seconds))
                       for limit, key in zip(limits, keys)]
            allowed = all(window.remaining >= 1 for window in windows)
            if allowed:
                for limit, key in zip(limits, keys):  # cannot fail: no other take runs meanwhile
                    self.storage.acquire_sliding_window_entry(key, limit.amount, limit.seconds)
        return allowed, windows

    def close(self) -> None:
        self.storage.timer.cancel()
