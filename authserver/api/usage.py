"""`UsageMeter`: counts authenticated requests per (account, credential, hour) in memory and
sends them, batched, to the authorization server's `POST {issuer}/v1/usage`, which owns them.

- `count(account, credential)` adds one to the current hour's counter (thread-safe, no I/O).
- A background thread per worker process (started on the first count, so also after a fork)
  calls `flush()` every `interval` seconds; `close()` (registered with `atexit`) flushes on shutdown.
- `flush()` moves the counters into a batch with a fresh `batch_id` and sends it with the
  service's client credentials (HTTP Basic). The batch is kept, with the same id and content,
  until the server acknowledges it (200 `accepted` or `duplicate`) and is re-sent on every later
  flush; the server applies a batch id once, so a retry after a lost answer never counts twice.
  Requests counted meanwhile go into the next batch. A batch the server refuses as malformed
  (400, 413) can never be accepted: it is logged and dropped rather than retried forever. A batch
  holds at most 1000 entries and 48 KiB (the server's default body limit is 64 KiB).

What a crash can lose: only what is in this process's memory, i.e. the counts recorded since
the oldest batch not yet acknowledged was taken. With the server answering, a flush at time t takes
the counts of (t - interval, t] and sends them: a crash before the acknowledgement loses them plus
those counted during the send; a crash just before the next flush loses one interval. At most one
flush interval plus the duration of the send in progress (at most `timeout`, 10 s) of this
worker's requests: 20 s by default. While the server is unreachable: everything counted since the
outage began (the pending batch and the counts after it). A graceful stop (SIGTERM, atexit) loses
nothing if the server answers within the timeout. A crash of the server loses nothing acknowledged
(the answer follows the commit); an unacknowledged batch is retried.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

log = logging.getLogger(__name__)

HOUR = 3600
MAX_ENTRIES = 1000  # per batch, as the server accepts
MAX_COUNT = 10**7  # per entry, as the server accepts
MAX_IDENTIFIER = 64
# The server refuses bodies over AUTHSERVER_MAX_BODY_BYTES (64 KiB by default): a batch stays below.
MAX_BATCH_BYTES = 48 * 1024


@dataclass(frozen=True)
class Batch:
    batch_id: str
    counts: tuple[dict, ...]
    left_behind: bool = False  # counts stayed in the buffer when it was taken (the limits cut it)

    def body(self) -> bytes:
        return json.dumps({"batch_id": self.batch_id, "counts": list(self.counts)}).encode()


class UsageMeter:
    def __init__(self, url: str, client_id: str, client_secret: str, interval: float = 10.0, *,
                 timeout: float = 10.0, clock: Callable[[], float] = time.time):
        self.url, self.interval, self.timeout, self.clock = url, interval, timeout, clock
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"  # RFC 6749 §2.3.1
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()  # guards _counts
        self._flush_lock = threading.Lock()  # one flush at a time; guards _pending
        self._pending: Batch | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        atexit.register(self.close)
        after_fork = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    # -- counting ------------------------------------------------------------------

    def count(self, account: str, credential: str) -> None:
        if not (0 < len(account) <= MAX_IDENTIFIER and 0 < len(credential) <= MAX_IDENTIFIER):
            log.warning("not metered: account or credential id longer than %d characters", MAX_IDENTIFIER)
            return
        now = self.clock()
        key = (account, credential, int(now) // HOUR * HOUR)
        with self._lock:
            self._ensure_flusher()
            self._counts[key] = self._counts.get(key, 0) + 1

    def pending_counts(self) -> dict[tuple[str, str, int], int]:
        """What is counted but not yet in a batch (for tests and diagnostics)."""
        with self._lock:
            return dict(self._counts)

    @property
    def pending_batch(self) -> Batch | None:
        return self._pending

    # -- sending -------------------------------------------------------------------

    def flush(self) -> bool:
        """Send the pending batch, then what was counted before this flush: another batch only
        while the last one left counts behind. What is counted during the sends waits for the next
        flush, so a busy worker reports once per interval, not back to back. True when all were
        acknowledged; on a failure the unacknowledged batch is kept for the next flush."""
        with self._flush_lock:
            more = True
            while True:
                if self._pending is None:
                    if not more:
                        return True
                    self._pending = self._take_batch()
                    if self._pending is None:
                        return True
                    more = self._pending.left_behind
                if not self._send(self._pending):
                    return False
                self._pending = None

    def close(self) -> None:
        """Stop the flusher and send what is left (once, within the timeout). Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and os.getpid() == self._pid:
            thread.join(self.timeout + 1)
        try:
            self.flush()
        except Exception:  # at exit: log, never raise
            log.exception("usage flush at shutdown failed")
        atexit.unregister(self.close)

    def _take_batch(self) -> Batch | None:
        with self._lock:
            if not self._counts:
                return None
            entries, size = [], 64
            for key in list(self._counts)[:MAX_ENTRIES]:
                account, credential, hour = key
                entry = {"account": account, "credential": credential, "hour": hour, "count": MAX_COUNT}
                size += len(json.dumps(entry)) + 2
                if size > MAX_BATCH_BYTES:
                    break  # the rest goes in a later batch
                entry["count"] = min(self._counts[key], MAX_COUNT)
                if self._counts[key] > MAX_COUNT:
                    self._counts[key] -= MAX_COUNT
                else:
                    del self._counts[key]
                entries.append(entry)
            return Batch(uuid.uuid4().hex, tuple(entries), left_behind=bool(self._counts))

    def _send(self, batch: Batch) -> bool:
        request = urllib.request.Request(self.url, data=batch.body(), method="POST", headers={
            "Content-Type": "application/json", "Authorization": self._authorization})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status = json.loads(answer.read(64 * 1024)).get("status")
        except urllib.error.HTTPError as error:
            if error.code in (400, 413):  # it can never be accepted: retrying would block every later batch
                log.error("usage batch %s refused as malformed (HTTP %d), dropped (%d entries): %s",
                          batch.batch_id, error.code, len(batch.counts), error.read(4096)[:500])
                return True
            log.warning("usage batch %s not acknowledged (HTTP %d), kept for retry", batch.batch_id, error.code)
            return False
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("usage batch %s not sent (%s), kept for retry", batch.batch_id, exc)
            return False
        if status not in ("accepted", "duplicate"):
            log.warning("usage batch %s: unexpected answer %r, kept for retry", batch.batch_id, status)
            return False
        return True

    def _ensure_flusher(self) -> None:
        """Called with _lock held: one flusher thread per process, started on the first count."""
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="usage-flusher", daemon=True)
            self._thread.start()

    def _after_fork(self) -> None:
        """In a forked worker: fresh locks and no thread (threads do not survive a fork), and no
        counts copied from the parent, which reports its own."""
        self._pid, self._counts, self._pending, self._thread = os.getpid(), {}, None, None
        self._lock, self._flush_lock, self._stop = threading.Lock(), threading.Lock(), threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:
                log.exception("usage flush failed")
