"""Verifies API keys (`tdk_…`) on the resource side, by introspection at the authorization server
with a short in-memory cache.

    keys = JWKSCache(issuer)                      # the one the TokenVerifier uses
    api_keys = APIKeyVerifier.from_discovery(keys, client_id, client_secret)
    principal = api_keys.verify(key)              # or InvalidAPIKey / ServiceUnavailable

- A key of the wrong shape or checksum (`api_key_format`) is refused here, with no request.
- A well-formed key is introspected (RFC 7662): `POST` to the introspection endpoint, with the form
  `token=<key>&token_type_hint=api_key`, authenticated with HTTP Basic as this service's own
  confidential client. Only an active answer with `token_type` `api_key`, not past its `exp`, is
  accepted; anything else the server says about the key refuses it (InvalidAPIKey).
- Answers are cached in memory under the key's SHA-256 digest (the key itself is neither kept nor
  logged): an active one for `ttl` seconds but never beyond the key's `exp`, an inactive one for
  `negative_ttl`, at most `max_entries` of them (the oldest go first). Concurrent requests for one
  uncached key wait for a single introspection.
- Revocation delay: a key revoked (or a plan changed) at the server is still accepted as it was
  by this process for at most `ttl` seconds, the age of its cached answer (30 s by default).
- The server unreachable, answering anything but 200, or something that is no introspection
  answer: ServiceUnavailable (503), never cached, logged in one line without the key. Never a
  401: the key may well be good, and a client told 401 would drop it.

`introspections` counts the introspection requests made (failed or not).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote, urlencode

from .api_key_format import is_well_formed
from .errors import InvalidAPIKey, InvalidToken, ServiceUnavailable
from .http import HTTPFailure, fetch_json, new_opener
from .jwks import HTTP_TIMEOUT, FetchError, JWKSCache
from .verifier import Principal, rate_limits_of

log = logging.getLogger(__name__)

TTL = 30  # seconds an active answer is trusted: the revocation delay
NEGATIVE_TTL = 30  # seconds an inactive answer is trusted
MAX_ENTRIES = 10_000
MAX_ANSWER_BYTES = 64 * 1024  # an introspection answer is a few hundred bytes
TOKEN_TYPE = "api_key"  # the token_type_hint sent and the token_type an active answer must carry


class _NoAnswer(Exception):
    """The server gave no usable answer (the reason is the message; it never holds the key)."""


@dataclass(frozen=True)
class _Entry:
    principal: Principal | None  # None: the key is not valid
    until: float  # the monotonic clock's time after which the answer is asked again


class APIKeyVerifier:
    def __init__(
        self,
        introspection_url: str | Callable[[], str],
        client_id: str,
        client_secret: str,
        *,
        ttl: float = TTL,
        negative_ttl: float = NEGATIVE_TTL,
        max_entries: int = MAX_ENTRIES,
        timeout: float = HTTP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`introspection_url`: the server's introspection endpoint, or a function returning it
        (raising FetchError when it is not known yet; see `from_discovery`). `client_id` and
        `client_secret`: this service's confidential client. `ttl` and `negative_ttl` may be 0
        (no caching). `clock` is monotonic seconds for the cache (tests inject one); a key's `exp`
        is compared with the wall clock."""
        if isinstance(introspection_url, str) and not introspection_url.startswith(("https://", "http://")):
            raise ValueError("the introspection URL must be an absolute http(s) URL")
        if not client_id or not client_secret:
            raise ValueError("introspection needs this service's client_id and client_secret")
        if ttl < 0 or negative_ttl < 0 or max_entries < 1 or timeout <= 0:
            raise ValueError("need ttl >= 0, negative_ttl >= 0, max_entries >= 1 and timeout > 0")
        self._introspection_url = (lambda: introspection_url) if isinstance(introspection_url, str) else introspection_url
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"  # RFC 6749 §2.3.1
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self.timeout = timeout
        self.introspections = 0
        self._clock = clock
        self._opener = new_opener()
        self._lock = threading.Lock()  # guards _cache, _flights and introspections
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()  # by key digest, oldest first
        self._flights: dict[bytes, Future] = {}  # introspections in progress, by key digest

    @classmethod
    def from_discovery(cls, keys: JWKSCache, client_id: str, client_secret: str, **options) -> APIKeyVerifier:
        """A verifier that introspects at the `introspection_endpoint` of the issuer's discovery
        document, which `keys` reads (once, shared with the key set). Read on first use, so that a
        server down when the service starts delays nothing but the first API keys."""
        return cls(lambda: keys.endpoint("introspection_endpoint"), client_id, client_secret, **options)

    def verify(self, key: str) -> Principal:
        """The principal of a valid API key; InvalidAPIKey, or ServiceUnavailable when the server
        cannot tell."""
        if not is_well_formed(key):
            raise _refused("wrong shape or checksum")
        principal = self._entry(hashlib.sha256(key.encode("ascii")).digest(), key).principal
        if principal is None:
            raise _refused("unknown, revoked or expired at the server")
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise _refused("past its exp")
        return principal

    # -- the cache, one introspection per key at a time ---------------------------------------

    def _entry(self, digest: bytes, key: str) -> _Entry:
        with self._lock:
            entry = self._fresh(digest)
            if entry is not None:
                return entry
            flight = self._flights.get(digest)
            leading = flight is None
            if leading:
                flight = self._flights[digest] = Future()
        if not leading:
            entry = flight.result()
            if entry is None:
                raise ServiceUnavailable("the introspection this request waited for failed")
            return entry
        entry = None
        try:
            entry = self._introspect(key)
            return entry
        finally:
            with self._lock:
                if entry is not None and entry.until > self._clock():
                    self._cache[digest] = entry
                    while len(self._cache) > self.max_entries:
                        self._cache.popitem(last=False)
                del self._flights[digest]
            flight.set_result(entry)

    def _fresh(self, digest: bytes) -> _Entry | None:
        """Called with _lock held: the cached answer for `digest` if it is still to be trusted."""
        entry = self._cache.get(digest)
        if entry is None or self._clock() < entry.until:
            return entry
        del self._cache[digest]
        return None

    def _introspect(self, key: str) -> _Entry:
        try:
            principal = _principal_from(self._post(key))
        except (_NoAnswer, FetchError) as exc:
            log.warning("API key not checked, introspection failed: %s", exc)
            raise ServiceUnavailable(str(exc)) from None
        now = self._clock()
        if principal is None:
            return _Entry(None, now + self.negative_ttl)
        ttl = self.ttl
        if principal.expires_at is not None:
            ttl = min(ttl, principal.expires_at - time.time())
        return _Entry(principal, now + ttl)

    def _post(self, key: str) -> object:
        url = self._introspection_url()
        with self._lock:
            self.introspections += 1
        request = urllib.request.Request(
            url, data=urlencode({"token": key, "token_type_hint": TOKEN_TYPE}).encode(), method="POST",
            headers={"Authorization": self._authorization, "Accept": "application/json",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            answer, _ = fetch_json(self._opener, request, timeout=self.timeout, max_bytes=MAX_ANSWER_BYTES)
        except HTTPFailure as exc:
            raise _NoAnswer(str(exc)) from None
        return answer


def _principal_from(answer: object) -> Principal | None:
    """The principal an introspection answer describes, or None when it describes no API key
    (inactive, or another token type). Raises _NoAnswer for what is no introspection answer or an
    active one of the wrong shape: a broken server, not a bad key."""
    if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
        raise _NoAnswer("the answer is not a JSON object with a boolean `active`")
    if not answer["active"] or answer.get("token_type") != TOKEN_TYPE:
        return None
    for name in ("sub", "key_id"):
        if not isinstance(answer.get(name), str) or not answer[name]:
            raise _NoAnswer(f"an active answer without `{name}`")
    for name in ("scope", "plan"):
        if not isinstance(answer.get(name, ""), str):
            raise _NoAnswer(f"`{name}` is not a string")
    exp = answer.get("exp")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int)):
        raise _NoAnswer("`exp` is not an integer")
    try:
        rate_limits = rate_limits_of(answer)
    except InvalidToken as exc:
        raise _NoAnswer(exc.detail) from None
    return Principal(
        subject=answer["sub"],
        client_id=None,
        scopes=tuple(answer.get("scope", "").split()),
        plan=answer.get("plan"),
        credential_id=answer["key_id"],
        token_id=answer["key_id"],
        expires_at=exp,
        claims=MappingProxyType(dict(answer)),
        rate_limits=rate_limits,
    )


def _refused(detail: str) -> InvalidAPIKey:
    log.debug("API key refused: %s", detail)
    return InvalidAPIKey(detail)
