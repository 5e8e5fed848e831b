"""Many requests at once, over real HTTP: each on its own connection, all released together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

TIMEOUT = 60  # seconds per request: a worker may have many queued behind its threads


def at_once(count: int, send: Callable[[requests.Session, int], requests.Response]) -> list[requests.Response]:
    """`send(session, i)` for i in range(count), in `count` threads released by one barrier; each
    session has its own connection. The responses in order of i."""
    barrier = threading.Barrier(count, timeout=TIMEOUT)

    def one(i: int) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return send(session, i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))
