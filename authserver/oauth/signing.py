"""Signs tokens with the active key and publishes the JWKS, following key rotations without a
restart.

Each worker holds one immutable snapshot of the key ring (active key, JWKS, public keys by kid)
and replaces it whole. At most every `reload_interval` seconds (AUTHSERVER_KEY_RELOAD_SECONDS,
default 5), the first call that finds the interval passed stats the manifest; only if its
version (inode, mtime, size) changed is the key ring read again. The hot path is a clock read
and a comparison: no lock, no file access. So a request that starts `reload_interval` seconds
after a change to the store is served with the new keys, in every worker and instance sharing
the keys directory.

A reload that fails (a corrupt manifest, an unreadable PEM, no active key) changes nothing: the
worker keeps the keys it has, logs one line, and tries again at the next interval.

Optionally (AUTHSERVER_KEY_ROTATION_DAYS), the same check rotates the keys when the active key
is old enough: see `RotationPolicy` and `KeyStore.rotate_if_due`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from joserfc import jwt
from joserfc.jwk import RSAKey

from .keys import KeySet, KeyStore, ManifestVersion, SigningKey

log = logging.getLogger(__name__)

# How long verifiers may cache the JWKS (its Cache-Control max-age).
JWKS_MAX_AGE = 300
# Default of AUTHSERVER_KEY_RELOAD_SECONDS: how stale a worker's keys can be.
RELOAD_INTERVAL = 5
# Added to a retired key's lifetime: verifiers' leeway on `exp` and clock differences.
CLOCK_SKEW_MARGIN = 60


@dataclass(frozen=True)
class RotationPolicy:
    """The timings of a rotation, from the settings.

    - `min_next_age`: a next key signs only after it has been published this long, so that no
      verifier can still hold a cached JWKS without it: a worker publishes it at most
      `reload_interval` after it is written, and a verifier may cache the JWKS for JWKS_MAX_AGE.
    - `retired_lifetime`: a retired key stays published this long: the last token it signed was
      signed at most `reload_interval` after its retirement (workers still on the old key ring)
      and lives `access_token_ttl`, plus CLOCK_SKEW_MARGIN.
    - `max_active_age`: automatic rotation once the active key is this old; 0 is off.
    """

    reload_interval: int
    min_next_age: int
    retired_lifetime: int
    max_active_age: int = 0

    @classmethod
    def from_settings(cls, settings) -> "RotationPolicy":
        reload_interval = settings.key_reload_seconds
        return cls(
            reload_interval=reload_interval,
            min_next_age=JWKS_MAX_AGE + reload_interval,
            retired_lifetime=settings.access_token_ttl + reload_interval + CLOCK_SKEW_MARGIN,
            max_active_age=settings.key_rotation_days * 86400,
        )


@dataclass(frozen=True)
class _KeyRing:
    """What one read of the store gave; never changed once built."""

    version: ManifestVersion | None
    keys: tuple[SigningKey, ...]
    active: SigningKey
    jwks: dict
    jwks_json: bytes  # the JWKS as served, serialised once per key ring
    public_keys: Mapping[str, RSAKey]

    @classmethod
    def build(cls, store: KeyStore, keyset: KeySet) -> "_KeyRing":
        active = store.active_key(list(keyset.keys))  # KeyStoreError unless exactly one
        jwks = {"keys": [key.public_jwk() for key in keyset.keys]}
        return cls(
            version=keyset.version,
            keys=keyset.keys,
            active=active,
            jwks=jwks,
            jwks_json=json.dumps(jwks, sort_keys=True, separators=(",", ":")).encode() + b"\n",  # as jsonify writes it
            public_keys=MappingProxyType({key.kid: RSAKey.import_key(key.public_jwk()) for key in keyset.keys}),
        )


class TokenSigner:
    def __init__(
        self,
        store: KeyStore,
        *,
        reload_interval: float = RELOAD_INTERVAL,
        auto_rotation: RotationPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        """`auto_rotation`: rotate by age (its max_active_age > 0) or None. `clock` times the
        reload checks; `wall_clock` is compared with the keys' timestamps (tests inject both)."""
        self._store = store
        self._ring = _KeyRing.build(store, store.read())  # a store without an active key is an error here
        self._reload_interval = reload_interval
        self._auto_rotation = auto_rotation if auto_rotation and auto_rotation.max_active_age > 0 else None
        self._clock = clock
        self._wall_clock = wall_clock
        self._check_lock = threading.Lock()
        self._next_check = clock() + reload_interval
        self._last_problem: str | None = None

    @classmethod
    def from_settings(cls, store: KeyStore, settings) -> "TokenSigner":
        policy = RotationPolicy.from_settings(settings)
        return cls(store, reload_interval=policy.reload_interval, auto_rotation=policy)

    # -- the interface ----------------------------------------------------------

    @property
    def kid(self) -> str:
        return self._current().active.kid

    def sign(self, claims: dict, typ: str) -> str:
        active = self._current().active  # one snapshot: the kid always names the key that signs
        # Name the active key by kid: given a key set without one, joserfc would pick at random.
        header = {"alg": "RS256", "typ": typ, "kid": active.kid}
        return jwt.encode(header, claims, active.key, algorithms=["RS256"])

    def jwks(self) -> dict:
        """The published key set (shared: do not modify it)."""
        return self._current().jwks

    def jwks_json(self) -> bytes:
        """The published key set as the JSON document served; it follows `jwks()`."""
        return self._current().jwks_json

    def public_key(self, kid) -> RSAKey:
        """A published key by kid; KeyError for any other (verification then fails closed)."""
        return self._current().public_keys[kid]

    # -- following the store ----------------------------------------------------

    def _current(self) -> _KeyRing:
        if self._clock() >= self._next_check:
            self._check()
        return self._ring

    def _check(self) -> None:
        # One thread per worker checks; the others carry on with the key ring they have.
        if not self._check_lock.acquire(blocking=False):
            return
        try:
            if self._clock() < self._next_check:
                return  # another thread just checked
            # Never rotate on a store this worker cannot read: it would only add a second error.
            if self._reload() and self._auto_rotation is not None:
                self._rotate_if_due(self._auto_rotation)
        finally:
            self._next_check = self._clock() + self._reload_interval
            self._check_lock.release()

    def _reload(self) -> bool:
        """Replace the key ring if the manifest changed; False if that failed."""
        ring = self._ring
        try:
            if self._store.version() == ring.version:
                return True
            new_ring = _KeyRing.build(self._store, self._store.read())
        except Exception as exc:  # noqa: BLE001 - whatever it is, this request and the keys in memory carry on
            self._problem(
                f"signing keys not reloaded, still signing with {ring.active.kid} "
                f"and publishing {len(ring.keys)} keys: {exc}"
            )
            return False
        self._ring = new_ring  # one reference assignment: every thread sees the old ring or the new
        self._last_problem = None
        if new_ring.active.kid != ring.active.kid:
            log.info("signing keys reloaded: now signing with %s", new_ring.active.kid)
        return True

    def _rotate_if_due(self, policy: RotationPolicy) -> None:
        # Decided first on the snapshot, so that the lock is taken only when there is work to do;
        # the store decides again under the lock, so only one worker of many acts.
        ring = self._ring
        now = int(self._wall_clock())
        if now - ring.active.created_at < policy.max_active_age:
            return
        upcoming = [key.created_at for key in ring.keys if key.state == "next"]
        if upcoming and now - min(upcoming) < policy.min_next_age:
            return
        try:
            outcome = self._store.rotate_if_due(
                max_active_age=policy.max_active_age,
                retired_lifetime=policy.retired_lifetime,
                min_next_age=policy.min_next_age,
                now=now,
            )
        except Exception as exc:  # noqa: BLE001 - as for a reload: logged, and the keys in memory carry on
            self._problem(f"automatic key rotation failed: {exc}")
            return
        if outcome:
            log.info("automatic key rotation: %s", outcome)
        self._reload()  # what this worker did, or what another did while this one waited for the lock

    def _problem(self, message: str) -> None:
        """Log a problem on one line, once, not at every interval while it lasts."""
        message = " ".join(message.split())
        if message != self._last_problem:
            log.error(message)
            self._last_problem = message
