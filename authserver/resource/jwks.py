"""The authorization server's signing keys, as a resource service sees them: discovered from the
issuer, fetched over HTTP and cached.

- Discovery (OpenID Connect Discovery 1.0 §4, RFC 8414 §3): `{issuer}/.well-known/openid-configuration`
  is read once, its `issuer` must equal the configured one exactly (§4.3), and its `jwks_uri` names
  the key set. Its other endpoints (`endpoint(name)`, e.g. the introspection endpoint API keys are
  checked at) come from the same document.
- The key set is cached for its `Cache-Control: max-age`, clamped to [min_max_age, max_max_age]
  (no max-age, `no-cache` or `no-store`: min_max_age). The floor keeps a server that says "0"
  from turning every request into a fetch; the ceiling bounds how long a key the server stopped
  publishing can still be trusted.
- A kid that is not in the cached set triggers a fetch, as does a stale set; but whatever the
  reason, at most one fetch per `refresh_cooldown` seconds, so tokens with made-up kids cannot
  make the verifier hammer the server.
- One fetch at a time: the other threads carry on with the current keys, and wait only when
  there are none.
- A failed fetch (network, status, body) changes nothing: the keys fetched last stay in use
  until `max_max_age` after they were fetched, then none are (fail closed).
- Only RSA keys for RS256 signatures are kept (`kty` RSA, `alg` RS256 or absent, `use` sig or
  absent); every other entry is ignored.

The hot path (a known kid, a fresh set) is a clock read, a comparison and a dict lookup: no lock,
no network. `discovery_fetches` and `jwks_fetches` count the HTTP requests made (failed or not);
`on_refresh`, when given, is told the outcome of every refresh ("ok" or "failed", e.g. for a
metric). `ready()` says whether there are keys to verify with (readiness probes).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .http import HTTPFailure, fetch_json, new_opener

log = logging.getLogger(__name__)

MIN_MAX_AGE = 60  # seconds; the floor of a key set's cache lifetime
MAX_MAX_AGE = 3600  # seconds; the ceiling, and how long keys outlive failed fetches
REFRESH_COOLDOWN = 30  # seconds between two fetches, whatever their reason
HTTP_TIMEOUT = 5  # seconds per request
MAX_DOCUMENT_BYTES = 512 * 1024  # a discovery document or key set larger than this is refused
MIN_RSA_BITS = 2048  # NIST SP 800-131A; the server makes 2048-bit keys or larger

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|=|$)", re.IGNORECASE)


class FetchError(Exception):
    """Discovery or the key set could not be fetched or is not acceptable (the reason is the message)."""


def acceptable_keys(document: object) -> dict[str, RSAKey]:
    """The RS256 signing keys of a JWKS document (RFC 7517 §5), by kid; other entries are ignored.
    A document that is not a key set at all is a FetchError."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise FetchError("the JWKS is not a JSON object with a `keys` array")
    keys: dict[str, RSAKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue  # without a kid a key cannot be chosen; a duplicate kid is ambiguous: first wins
        if entry.get("kty") != "RSA":
            continue
        if entry.get("alg", "RS256") != "RS256":  # RFC 7517 §4.4: a key declared for another algorithm
            continue
        if entry.get("use", "sig") != "sig":  # RFC 7517 §4.2: an encryption key never verifies
            continue
        if "d" in entry:
            continue  # a private key has no business in a published key set
        try:
            key = RSAKey.import_key({k: v for k, v in entry.items() if k != "key_ops"})
        except (JoseError, ValueError, TypeError):
            continue
        if key.raw_value.key_size < MIN_RSA_BITS:
            continue
        keys[kid] = key
    return keys


def cache_lifetime(cache_control: str | None, *, floor: float, ceiling: float) -> float:
    """Seconds to keep a response with this Cache-Control header, clamped to [floor, ceiling]."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return floor
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return floor
    return min(max(float(match.group(1)), floor), ceiling)


@dataclass(frozen=True)
class _Snapshot:
    """One successful fetch of the key set; never changed once built."""

    keys: Mapping[str, RSAKey] = field(default_factory=lambda: MappingProxyType({}))
    fresh_until: float = float("-inf")  # after this, fetch again (if the cool-down allows)
    usable_until: float = float("-inf")  # after this, the keys are no longer trusted at all


class JWKSCache:
    def __init__(
        self,
        issuer: str,
        *,
        min_max_age: float = MIN_MAX_AGE,
        max_max_age: float = MAX_MAX_AGE,
        refresh_cooldown: float = REFRESH_COOLDOWN,
        timeout: float = HTTP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        on_refresh: Callable[[str], None] | None = None,
    ):
        """`issuer`: exactly as in the tokens' `iss` and the discovery document. `clock` is
        monotonic seconds (tests inject one). `on_refresh(outcome)`: called after each refresh,
        with "ok" or "failed"."""
        if not 0 < min_max_age <= max_max_age:
            raise ValueError("need 0 < min_max_age <= max_max_age")
        if refresh_cooldown < 0 or timeout <= 0:
            raise ValueError("refresh_cooldown must be >= 0 and timeout > 0")
        self.issuer = issuer
        self.min_max_age = min_max_age
        self.max_max_age = max_max_age
        self.refresh_cooldown = refresh_cooldown
        self.timeout = timeout
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self._clock = clock
        self._on_refresh = on_refresh
        self._opener = new_opener()
        self._lock = threading.Lock()
        self._snapshot = _Snapshot()
        self._metadata: dict | None = None  # the discovery document, once read
        self._next_fetch = float("-inf")  # the cool-down: no fetch starts before this
        # Whether the last fetch failed: a key this cache cannot find may then be a genuine one
        # it could not learn of (a rotation during the outage), so the verifier answers 503, not 401.
        self.unreachable = False

    @property
    def fetches(self) -> int:
        """Every HTTP request made so far (discovery and key set)."""
        return self.discovery_fetches + self.jwks_fetches

    def endpoint(self, name: str) -> str:
        """The absolute http(s) URL named `name` in the issuer's discovery document (read once,
        shared with the key fetches), e.g. `introspection_endpoint`; FetchError if there is none."""
        if self._metadata is None:
            with self._lock:
                if self._metadata is None:
                    self._metadata = self._discover()
        return _endpoint_url(self._metadata, name)

    def get_key(self, kid: str) -> RSAKey | None:
        """The published RS256 key named `kid`, or None (unknown kid, or no trusted keys: the
        caller then refuses the token)."""
        if not self._usable(self._snapshot):
            self._refresh(wait=True)  # nothing to verify with: wait for the keys
        elif self._clock() >= self._snapshot.fresh_until:
            self._refresh(wait=False)  # stale: one thread fetches, the others use what there is
        key = self._lookup(kid)
        if key is None:
            # Perhaps a key published since the last fetch (a rotation); the cool-down decides.
            self._refresh(wait=True)
            key = self._lookup(kid)
        return key

    def ready(self) -> bool:
        """Whether there are trusted keys to verify with, fetching them first when there are none
        (unless another thread is fetching, or the cool-down forbids it)."""
        if not self._usable(self._snapshot):
            self._refresh(wait=False)
        return self._usable(self._snapshot)

    # -- internals ---------------------------------------------------------------

    def _usable(self, snapshot: _Snapshot) -> bool:
        return self._clock() < snapshot.usable_until

    def _lookup(self, kid: str) -> RSAKey | None:
        snapshot = self._snapshot
        return snapshot.keys.get(kid) if self._usable(snapshot) else None

    def _refresh(self, *, wait: bool) -> None:
        if not self._lock.acquire(blocking=wait):
            return  # another thread is fetching
        try:
            now = self._clock()
            if now < self._next_fetch:
                return  # fetched (or tried) within the cool-down, perhaps by the thread we waited for
            self._next_fetch = now + self.refresh_cooldown
            try:
                self._snapshot = self._fetch_keys()
                outcome = "ok"
                self.unreachable = False
            except FetchError as exc:
                self.unreachable = True
                snapshot = self._snapshot
                kept = f"keeping {len(snapshot.keys)} keys" if self._usable(snapshot) else "no keys to verify with"
                log.warning("JWKS of %s not refreshed (%s): %s", self.issuer, kept, exc)
                outcome = "failed"
            if self._on_refresh is not None:
                self._on_refresh(outcome)
        finally:
            self._lock.release()

    def _fetch_keys(self) -> _Snapshot:
        if self._metadata is None:
            self._metadata = self._discover()
        document, cache_control = self._get_json(_endpoint_url(self._metadata, "jwks_uri"), counter="jwks_fetches")
        keys = acceptable_keys(document)
        fetched_at = self._clock()
        lifetime = cache_lifetime(cache_control, floor=self.min_max_age, ceiling=self.max_max_age)
        return _Snapshot(MappingProxyType(keys), fetched_at + lifetime, fetched_at + self.max_max_age)

    def _discover(self) -> dict:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata, _ = self._get_json(url, counter="discovery_fetches")
        if not isinstance(metadata, dict):
            raise FetchError("the discovery document is not a JSON object")
        # OpenID Connect Discovery 1.0 §4.3: the issuer MUST be identical to the one configured.
        if metadata.get("issuer") != self.issuer:
            raise FetchError(f"the discovery document names the issuer {metadata.get('issuer')!r}")
        _endpoint_url(metadata, "jwks_uri")  # a document without a key set is not kept
        return metadata

    def _get_json(self, url: str, *, counter: str) -> tuple[object, str | None]:
        """The JSON body of a 200 answer to GET `url`, and its Cache-Control header."""
        setattr(self, counter, getattr(self, counter) + 1)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            document, headers = fetch_json(self._opener, request, timeout=self.timeout, max_bytes=MAX_DOCUMENT_BYTES)
        except HTTPFailure as exc:
            raise FetchError(str(exc)) from None
        return document, headers.get("Cache-Control")


def _endpoint_url(metadata: dict, name: str) -> str:
    url = metadata.get(name)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise FetchError(f"the discovery document has no absolute http(s) `{name}`")
    return url
