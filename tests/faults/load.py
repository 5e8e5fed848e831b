"""Load for fault tests: a few threads repeating one step each until told to stop, every
outcome recorded (an HTTP status with its body and headers, or the connection error)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import requests
from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Outcome:
    label: str
    phase: str
    status: int | None  # None: no HTTP answer (the connection failed)
    body: str = ""
    headers: dict = field(default_factory=dict)
    error: str = ""
    finished: float = field(default_factory=time.monotonic)  # when the answer (or the failure) came

    @classmethod
    def of(cls, label: str, phase: str, response: requests.Response) -> "Outcome":
        return cls(label, phase, response.status_code, response.text, CaseInsensitiveDict(response.headers))


class Load:
    """`Load(step, threads=4)`: each thread calls `step(load, index)` in a loop until `stop()`.
    A step records what it saw with `load.record(...)`; `phase` tags outcomes with the stage of
    the test they happened in (set it from the test)."""

    def __init__(self, step: Callable[["Load", int], None], *, threads: int) -> None:
        self.step = step
        self.phase = "before"
        self.outcomes: list[Outcome] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(index,), daemon=True) for index in range(threads)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def record(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def request(self, label: str, method: str, url: str, **kwargs) -> Outcome:
        """One HTTP request, recorded; a connection failure is an outcome, not an exception."""
        phase = self.phase
        try:
            response = requests.request(method, url, timeout=30, allow_redirects=False, **kwargs)
        except requests.ConnectionError as exc:
            return self.record(Outcome(label, phase, None, error=type(exc).__name__))
        return self.record(Outcome.of(label, phase, response))

    def count(self, *, phase: str | None = None, label: str | None = None) -> int:
        return len(self.select(phase=phase, label=label))

    def select(self, *, phase: str | None = None, label: str | None = None) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes
                    if (phase is None or o.phase == phase) and (label is None or o.label == label)]

    def summary(self) -> dict:
        """How many outcomes of each (phase, label, status, first bytes of the body): for messages."""
        counts: dict = {}
        with self._lock:
            for o in self.outcomes:
                key = (o.phase, o.label, o.status or o.error, o.body[:80] if o.status != 200 else "")
                counts[key] = counts.get(key, 0) + 1
        return counts

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                self.step(self, index)
            except BaseException as exc:  # noqa: BLE001 - reported by the test, never lost in a thread
                with self._lock:
                    self.failures.append(exc)
                return
