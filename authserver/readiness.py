"""Readiness checks for `/readyz` (the server's and the API service's): each dependency is asked
in a thread of its own, all at once, and whatever has not answered by the deadline counts as
failed, so a dead dependency (a blackholed database host, a hung Redis) never hangs the probe.

A check that is still running from an earlier probe is not started again (it counts as failed):
a probe every few seconds against a hung dependency does not pile up threads.

Answers: 200 `{"status": "ready", "checks": {"database": "ok", …}}`, or 503 with `"status":
"unavailable"` and `"failed"` for the checks that failed or did not answer in time. Never an
error text: it could name a host, a URL or a password; the reason goes to the log, as the
exception's class name only.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from flask import jsonify

log = logging.getLogger(__name__)

DEADLINE_SECONDS = 2.0  # for all the checks together


class Readiness:
    """Named checks, each a function returning True when its dependency is usable."""

    def __init__(self, checks: dict[str, Callable[[], bool]], *, deadline: float = DEADLINE_SECONDS):
        self.checks = checks
        self.deadline = deadline
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def run(self) -> dict[str, bool]:
        """Each check's outcome: True when it returned within the deadline."""
        results: dict[str, bool] = {}
        started = []
        with self._lock:
            for name, check in self.checks.items():
                if self._running.get(name) is not None and self._running[name].is_alive():
                    continue  # still hung from an earlier probe: failed
                thread = threading.Thread(target=self._run_one, args=(name, check, results), daemon=True,
                                          name=f"readyz-{name}")
                self._running[name] = thread
                thread.start()
                started.append(thread)
        end = time.monotonic() + self.deadline
        for thread in started:
            thread.join(max(0.0, end - time.monotonic()))
        return {name: results.get(name, False) for name in self.checks}

    def response(self):
        outcomes = self.run()
        ready = all(outcomes.values())
        body = {"status": "ready" if ready else "unavailable",
                "checks": {name: "ok" if ok else "failed" for name, ok in outcomes.items()}}
        return jsonify(body), 200 if ready else 503

    @staticmethod
    def _run_one(name: str, check: Callable[[], bool], results: dict[str, bool]) -> None:
        try:
            results[name] = check() is True
        except Exception as exc:  # noqa: BLE001 - whatever it is, the dependency is not usable
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = False
