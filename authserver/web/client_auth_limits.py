"""Throttling of failed client authentication (client_secret_basic and client_secret_post) at
`/oauth/token`, `/oauth/introspect` and `/oauth/revoke`, so that nobody can try client secrets at
speed (RFC 9700 §2.5, §4.15; RFC 6749 §10.10). Counters: `authserver.throttle`, the one sign-in
throttling uses (Redis when AUTHSERVER_REDIS_URL is set, else memory; a local fallback when Redis
is down).

- **20 failures per 5 minutes per client_id and client address**: a wrong secret, or a client_id
  that does not exist (counted alike, so the limit tells nothing about which clients exist).
  Keyed by address too because a client_id is public: a per-client_id limit alone would let anyone
  lock a client out of its own token endpoint by failing on purpose.
- **100 failures per 5 minutes per client address**, whatever the client_ids (spraying).

Once a limit is reached, requests with the key are answered 429 with `Retry-After` and
`{"error": "slow_down", ...}`, *before* any secret is compared: a correct secret is refused too
until the window frees up. `slow_down` is the token endpoint's registered "too fast" error
(RFC 8628 §3.5); `invalid_client` would tell a client with a correct secret that it is wrong.

Cost on the success path: none (no round trip, and no key computed while this process remembers
no throttled key). Failures are counted in the shared counter, and when a key reaches its limit
this process remembers it (`Blocked`, in memory) until the window frees up; the check before the
comparison reads only that memory. The trade-off, with several
processes: one that has not yet seen a failure since the limit was reached compares one more
secret for the key (its next failure reads the shared count, answers 429 and remembers the key),
so a guesser gets at most one extra guess per process per window. Every secret carries 256 bits
(credentials.py): the throttle limits the work a guesser can cause and flags it in the audit log
(`client_auth_failed`, `client_auth_throttled`), it is not what makes guessing hopeless.

Keys are SHA-256 digests (no client_id or address in clear in the store), addresses as in
sign_in_limits (ProxyFix, IPv6 per /64).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749.authenticate_client import (
    authenticate_client_secret_basic,
    authenticate_client_secret_post,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Flask
from limits import parse

from .. import audit
from ..extensions import SERVER_KEY
from ..settings import Settings
from .sign_in_limits import address_key, current_throttle

FAILURES_PER_CLIENT_AND_ADDRESS = parse("20 per 5 minutes")
FAILURES_PER_ADDRESS = parse("100 per 5 minutes")
# Only a presented client_id of our own shape is written to the audit log: anything else may be a
# secret pasted into the wrong field (or sent in swapped order), and it names no client anyway.
CLIENT_ID_SHAPE = re.compile(r"client_[0-9a-f]{24}")


class ClientAuthThrottled(OAuth2Error):
    """A limit is reached: 429, Retry-After, the RFC 6749 §5.2 error JSON."""

    error = "slow_down"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed client authentications. Try again later.")
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class Blocked:
    """This process's memory of the keys whose limit is reached, and until when (monotonic).
    Bounded: past MAX_ENTRIES, expired entries go, then the oldest."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        """Whether any key is remembered (usually none: then a request need not compute its keys)."""
        return bool(self._until)

    def seconds_left(self, key: str) -> int:
        until = self._until.get(key)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left > 0:
            return math.ceil(left)
        with self._lock:
            self._until.pop(key, None)  # its window has passed
        return 0

    def add(self, key: str, seconds: int) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._until) >= self.MAX_ENTRIES:
                for stale in [k for k, until in self._until.items() if until <= now]:
                    del self._until[stale]
                while len(self._until) >= self.MAX_ENTRIES:
                    del self._until[next(iter(self._until))]
            self._until[key] = now + seconds


def init_app(app: Flask, settings: Settings) -> None:
    """Wrap the server's secret-based client authentication methods (after sign_in_limits.init_app,
    whose throttle this shares)."""
    blocked = Blocked()
    server = app.extensions[SERVER_KEY]
    server.register_client_auth_method(
        "client_secret_basic", _guarded(authenticate_client_secret_basic, _basic_client_id, blocked))
    server.register_client_auth_method(
        "client_secret_post", _guarded(authenticate_client_secret_post, _post_client_id, blocked))


def _basic_client_id(request) -> str | None:
    client_id, secret = extract_basic_authorization(request.headers)
    return client_id if client_id and secret else None


def _post_client_id(request) -> str | None:
    form = request.form
    return form.get("client_id") if form.get("client_id") and form.get("client_secret") else None


def _guarded(authenticate, presented_client_id, blocked: Blocked):
    """`authenticate` (one of Authlib's methods), refused while throttled, failures counted."""

    def guarded(query_client, request):
        client_id = presented_client_id(request)
        if client_id is None:
            return authenticate(query_client, request)  # no secret presented: nothing to guess
        limits = None
        if blocked:  # some key is throttled in this process: is one of this request's?
            limits = _limits(client_id)
            for _, key in limits:
                seconds = blocked.seconds_left(key)
                if seconds:
                    raise ClientAuthThrottled(seconds)
        try:
            client = authenticate(query_client, request)
        except InvalidClientError:  # no such client
            _failed(client_id, limits or _limits(client_id), blocked)
            raise
        if client is None:
            _failed(client_id, limits or _limits(client_id), blocked)
        return client

    return guarded


def _limits(client_id: str):
    address = address_key()
    pair = hashlib.sha256(f"{client_id}\x00{address}".encode()).hexdigest()
    return ((FAILURES_PER_ADDRESS, "client-auth:" + address), (FAILURES_PER_CLIENT_AND_ADDRESS, "client-auth:" + pair))


def _failed(client_id: str, limits, blocked: Blocked) -> None:
    """Count one failure under each limit; remember a key whose limit it reaches. A failure past a
    limit (reached through another process) is answered 429 instead of 401."""
    audited = client_id if CLIENT_ID_SHAPE.fullmatch(client_id) else None
    audit.record("client_auth_failed", client=audited)
    throttle = current_throttle()
    for limit, key in limits:
        counted = throttle.acquire(limit, key)
        if counted and throttle.allows(limit, key):
            continue
        retry_after = throttle.seconds_until_allowed(limit, key)
        blocked.add(key, retry_after)
        audit.record("client_auth_throttled", client=audited, retry_after=retry_after)
        if not counted:
            raise ClientAuthThrottled(retry_after)
