"""The prune job (storage/prune.py) on a schedule inside the server: every
AUTHSERVER_PRUNE_INTERVAL_SECONDS (0: off), in each worker process.

- A daemon thread per worker, started by the worker's first request: granian starts its workers
  by fork, and a thread started before a fork does not run in the child (nor in the CLI, which
  builds an app but serves no request).
- Each wait is the interval times a random factor from 0.8 to 1.2, so that workers and instances
  spread out instead of pruning together; the first round comes after one such wait, not at
  start-up.
- On PostgreSQL a round runs only where it takes an advisory lock (prune.exclusive): one
  instance prunes at a time, and the others skip that round. The batches are safe to run
  concurrently (SQLite writes one at a time anyway); the lock only spares the duplicated work.
- A failed round is logged in one line (the error's type and its first line, never SQL
  parameters) and retried at the next interval; no error leaves the thread or reaches a request.
- The thread holds its schedule only by a weak reference between rounds, and ends when the app
  is gone (many apps come and go in tests).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref

from flask import Flask
from sqlalchemy.engine import Engine

from ..settings import Settings
from ..storage import prune
from ..storage.db import EXTENSION_KEY as DATABASE_KEY

log = logging.getLogger(__name__)

EXTENSION_KEY = "authserver.prune_schedule"
JITTER = (0.8, 1.2)


class PruneSchedule:
    """When this worker prunes next, and the thread that does it."""

    def __init__(self, engine: Engine, interval: int, batch_size: int, *, clock=time.time,
                 jitter=random.uniform) -> None:
        self._engine = engine
        self._interval = interval
        self._batch_size = batch_size
        self._clock = clock
        self._jitter = jitter
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.running_in: int | None = None  # the id of the process whose thread runs the rounds
        self.next_round: float | None = None
        self.rounds = 0  # rounds attempted, failed ones included
        self.last_deleted: dict[str, int] | None = None
        weakref.finalize(self, self._wake.set)  # the thread then sees its schedule is gone

    def ensure_started(self) -> None:
        """Start this process's thread unless it runs already (cheap: called on every request)."""
        if self.running_in == os.getpid():
            return
        with self._lock:
            if self.running_in == os.getpid():
                return
            self.next_round = self._clock() + self._wait()
            thread = threading.Thread(target=_run, args=(weakref.ref(self), self._wake),
                                      name="authserver-prune", daemon=True)
            thread.start()
            self.running_in = os.getpid()

    def wake(self) -> None:
        """Have the thread look at the clock now rather than when its wait ends."""
        self._wake.set()

    def run_due(self) -> float:
        """Run a round if one is due; returns the seconds until the next one."""
        if self._clock() >= self.next_round:
            self._round()
            self.next_round = self._clock() + self._wait()
        return max(0.0, self.next_round - self._clock())

    def _round(self) -> None:
        try:
            with self._engine.connect() as connection, prune.exclusive(connection) as ours:
                if ours:
                    self.last_deleted = prune.prune(connection, int(self._clock()), self._batch_size)
                    log.info("pruned %s", self.last_deleted)
        except Exception as exc:  # noqa: BLE001 - a failed round waits for the next one
            first_line = (str(exc).splitlines() or [""])[0]
            log.warning("prune failed (%s: %s); next try in about %d s", type(exc).__name__, first_line,
                        self._interval)
        finally:
            self.rounds += 1

    def _wait(self) -> float:
        return self._interval * self._jitter(*JITTER)


def _run(schedule_ref: weakref.ref, wake: threading.Event) -> None:
    while (schedule := schedule_ref()) is not None:
        wake.clear()  # before looking at the clock: a wake() from here on ends the wait below
        delay = schedule.run_due()
        del schedule  # between rounds, only the weak reference: the app may go
        wake.wait(delay)


def init_app(app: Flask, settings: Settings) -> None:
    """Prune on a schedule in each worker that serves a request, unless the interval is 0."""
    if not settings.prune_interval_seconds:
        return
    schedule = PruneSchedule(app.extensions[DATABASE_KEY].engine, settings.prune_interval_seconds,
                             settings.prune_batch_size)
    app.extensions[EXTENSION_KEY] = schedule
    app.before_request(schedule.ensure_started)
