"""Clients kept in memory for a few seconds, so that a token request usually authenticates its
client without a database round trip (client authentication was 40 % of a token's Python time).

Each worker holds its own cache. A change made through this worker (secret rotated, app deleted)
drops the entry at once; other workers and instances see it within `ttl` seconds
(AUTHSERVER_CLIENT_CACHE_SECONDS, default 5; 0 turns the cache off). Only clients that exist
are cached: an unknown client_id is looked up every time, so no one can fill the cache.
"""

from __future__ import annotations

import time
from typing import Callable

# More distinct clients than this within one TTL is unusual; past it the cache starts over.
MAX_ENTRIES = 10_000


class ClientCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, client_id: str):
        """The cached client, or None when absent or older than the TTL."""
        entry = self._entries.get(client_id)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, client_id: str, client) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {}  # one reference swap: readers see the old dict or the new
        self._entries[client_id] = (self._clock() + self.ttl, client)

    def forget(self, client_id: str) -> None:
        self._entries.pop(client_id, None)
