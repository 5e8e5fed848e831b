"""The signing key store: RSA private keys as PEM files plus a manifest naming each key's state.

Layout of the keys directory:
  keyset.json   {"keys": [{"kid": …, "state": "active"|"next"|"retired", "created_at": …,
                           "retired_at": …}]}      (retired_at: retired keys only, Unix seconds)
  <kid>.pem     PKCS#8 private key, mode 0600
  .lock         flock(2) target: every change happens under it

`kid` is the key's RFC 7638 thumbprint. A key's life:

  next      published in the JWKS, not yet signing (created by `generate` or `rotate`)
  active    signing; exactly one
  retired   still published, so tokens it signed keep verifying until they expire
  (removed) dropped from the manifest and its PEM deleted once `retired_at` plus the longest
            lifetime of a token it signed has passed (checked at each rotation)

The manifest is only ever replaced whole (temporary file + os.replace), PEM files are written
before the manifest names them and deleted after it stops naming them: a reader without the
lock sees the old or the new key set, never half of one. This module reads no settings: the
caller passes the lifetimes and ages in.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from .. import audit

MANIFEST = "keyset.json"
PUBLISHED_STATES = ("active", "next", "retired")

# What identifies one version of the manifest: os.replace gives every write a new inode, so this
# changes on every write even when the size and the mtime's granularity would not tell.
ManifestVersion = tuple  # (st_ino, st_mtime_ns, st_size)


class KeyStoreError(RuntimeError):
    pass


class RotationRefused(KeyStoreError):
    """Rotating now could make verifiers reject new tokens (see `KeyStore.rotate`)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    state: str
    created_at: int
    key: RSAKey
    retired_at: int | None = None

    def public_jwk(self) -> dict:
        jwk = self.key.as_dict(private=False)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


@dataclass(frozen=True)
class KeySet:
    """One consistent read of the store: its keys and the version of the manifest they came from
    (None when there is no manifest)."""

    keys: tuple[SigningKey, ...]
    version: ManifestVersion | None


class KeyStore:
    def __init__(self, directory: Path, key_size: int = 2048):
        self.directory = Path(directory)
        self.key_size = key_size

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    # -- reading -------------------------------------------------------------

    def load(self) -> list[SigningKey]:
        """Read every key named by the manifest; a missing or unreadable key is an error."""
        return list(self.read().keys)

    def read(self) -> KeySet:
        """The keys and the version of the manifest they were read from: the version is taken
        from the very file read (fstat), so a change made meanwhile is seen at the next check."""
        path = self.manifest_path
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return KeySet((), None)
        except OSError as exc:
            raise KeyStoreError(f"the key manifest {path} cannot be read: {exc}") from None
        with handle:
            status = os.fstat(handle.fileno())
            data = handle.read()
        entries = self._parse_manifest(data, path)
        return KeySet(tuple(self._load_key(entry) for entry in entries), _version(status))

    def version(self) -> ManifestVersion | None:
        """The manifest's current version (one stat), None when there is none."""
        try:
            return _version(os.stat(self.manifest_path))
        except FileNotFoundError:
            return None

    def active_key(self, keys: list[SigningKey] | None = None) -> SigningKey:
        """The one signing key, from `keys` if already loaded."""
        active = [key for key in (self.load() if keys is None else keys) if key.state == "active"]
        if len(active) != 1:
            raise KeyStoreError(f"the key store at {self.directory} has no active signing key")
        return active[0]

    # -- changing ------------------------------------------------------------

    def generate(self) -> SigningKey:
        """Create a key: active if the store has none yet, otherwise next (published, not signing)."""
        with self._locked():
            entries = self._read_manifest()
            state = "next" if any(e["state"] == "active" for e in entries) else "active"
            key = self._write_new_key(state, int(time.time()))
            entries.append(_entry(key))
            self._write_manifest(entries)
            return key

    def ensure_active(self) -> SigningKey:
        """The active key, generating it on first run (safe when several workers start at once)."""
        with self._locked():
            entries = self._read_manifest()
            if not any(e["state"] == "active" for e in entries):
                key = self._write_new_key("active", int(time.time()))
                entries.append(_entry(key))
                self._write_manifest(entries)
        return self.active_key()

    def rotate(self, *, retired_lifetime: int, min_next_age: int = 0, force: bool = False,
               now: int | None = None) -> list[SigningKey]:
        """next → active, active → retired (stamped `retired_at`), a new next key, and retired
        keys whose `retired_at + retired_lifetime` has passed removed. Returns the resulting keys.

        `retired_lifetime`: how long after its retirement a key may still have signed a token
        that has not expired (the caller's access-token lifetime plus margins).

        The safety rule: verifiers may hold a cached JWKS fetched before the next key was
        published; if that key starts signing too soon they reject its tokens as signed by an
        unknown key. So the oldest next key is promoted only once it has been published for
        `min_next_age` seconds; otherwise RotationRefused, and nothing changes. A store without a
        next key gets one generated and promoted at once, which the rule allows only with `force`
        (or `min_next_age=0`). `force` skips the rule.
        """
        now = int(time.time()) if now is None else now
        with self._locked():
            entries = self._read_manifest()
            kid = self._rotate_entries(entries, retired_lifetime=retired_lifetime,
                                       min_next_age=0 if force else min_next_age, now=now)
            keys = self.load()
        audit.record("signing_key_rotated", kid=kid, trigger="command", forced=force)
        return keys

    def rotate_if_due(self, *, max_active_age: int, retired_lifetime: int, min_next_age: int,
                      now: int | None = None) -> str | None:
        """Automatic rotation by age, decided under the lock on the manifest as it is now, so that
        of many workers deciding at once exactly one acts. When the active key is `max_active_age`
        seconds old: publish a next key if there is none ("published"); rotate once the next key
        is `min_next_age` old ("rotated"). Otherwise, or when another worker already acted: None."""
        now = int(time.time()) if now is None else now
        with self._locked():
            entries = self._read_manifest()
            active = [e for e in entries if e["state"] == "active"]
            if len(active) != 1:
                raise KeyStoreError(f"the key store at {self.directory} has no active signing key")
            if now - active[0]["created_at"] < max_active_age:
                return None
            upcoming = [e for e in entries if e["state"] == "next"]
            if not upcoming:
                entries.append(_entry(self._write_new_key("next", now)))
                self._write_manifest(entries)
                return "published"
            if now - min(e["created_at"] for e in upcoming) < min_next_age:
                return None
            kid = self._rotate_entries(entries, retired_lifetime=retired_lifetime, min_next_age=min_next_age, now=now)
        audit.record("signing_key_rotated", kid=kid, trigger="schedule")
        return "rotated"

    # -- internals -----------------------------------------------------------

    def _rotate_entries(self, entries: list[dict], *, retired_lifetime: int, min_next_age: int, now: int) -> str:
        """The rotation itself, on the manifest just read under the lock; writes it. Returns the
        kid of the key now signing."""
        active = [e for e in entries if e["state"] == "active"]
        if not active:
            raise KeyStoreError(
                f"the key store at {self.directory} has no active signing key to rotate (create one with `keys generate`)"
            )
        upcoming = sorted((e for e in entries if e["state"] == "next"), key=lambda e: e["created_at"])
        if upcoming:
            promoted = upcoming[0]  # the longest published: the one most verifiers have fetched
            age = now - promoted["created_at"]
            if age < min_next_age:
                raise RotationRefused(
                    f"refusing to rotate: the next key {promoted['kid']} was published {age} s ago, and verifiers "
                    f"may cache a JWKS without it for up to {min_next_age} s; rotate again in "
                    f"{min_next_age - age} s, or force it (keys rotate --force)"
                )
        else:
            if min_next_age > 0:
                raise RotationRefused(
                    f"refusing to rotate: the key store at {self.directory} has no next key, and verifiers need "
                    f"{min_next_age} s to see a new one; publish one with `keys generate` and rotate "
                    f"{min_next_age} s later, or force it (keys rotate --force) to generate and promote one now"
                )
            promoted = _entry(self._write_new_key("next", now))
            entries.append(promoted)
        for entry in entries:
            if entry["state"] == "retired" and "retired_at" not in entry:
                # Retired before retirement times were recorded: keep it a full lifetime from now.
                entry["retired_at"] = now
        for entry in active:
            entry["state"] = "retired"
            entry["retired_at"] = now
        promoted["state"] = "active"
        if not any(e["state"] == "next" for e in entries):
            entries.append(_entry(self._write_new_key("next", now)))
        expired = [e for e in entries if e["state"] == "retired" and e["retired_at"] + retired_lifetime <= now]
        entries[:] = [e for e in entries if e not in expired]
        self._write_manifest(entries)
        # Only once no manifest names them: a reader never finds a listed key missing on purpose.
        for entry in expired:
            (self.directory / f"{entry['kid']}.pem").unlink(missing_ok=True)
        return promoted["kid"]

    def _load_key(self, entry: dict) -> SigningKey:
        path = self.directory / f"{entry['kid']}.pem"
        try:
            pem = path.read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyStoreError(f"signing key {entry['kid']} cannot be read from {path}: {exc}") from None
        if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < 2048:
            raise KeyStoreError(f"signing key {entry['kid']} is not an RSA key of 2048 bits or more")
        key = RSAKey.import_key(pem)
        if key.thumbprint() != entry["kid"]:
            # Another key in its place (a file swapped or mixed up): signing with it would publish
            # tokens under a kid whose JWKS entry does not verify them.
            raise KeyStoreError(f"the key file {path} does not hold signing key {entry['kid']}")
        return SigningKey(entry["kid"], entry["state"], int(entry["created_at"]), key, entry.get("retired_at"))

    def _write_new_key(self, state: str, created_at: int) -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=self.key_size)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key = RSAKey.import_key(pem)
        kid = key.thumbprint()
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return SigningKey(kid, state, created_at, key)

    def _read_manifest(self) -> list[dict]:
        path = self.manifest_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            orphans = sorted(self.directory.glob("*.pem"))
            if orphans:
                # A lost manifest: starting a new key set would silently make every token signed so
                # far unverifiable. The operator restores it, or moves the keys away on purpose.
                raise KeyStoreError(
                    f"the key manifest {path} is missing but {len(orphans)} key file(s) are in {self.directory}: "
                    "restore the manifest, or move the key files away to start a new key set"
                ) from None
            return []
        except OSError as exc:
            raise KeyStoreError(f"the key manifest {path} cannot be read: {exc}") from None
        return self._parse_manifest(data, path)

    @staticmethod
    def _parse_manifest(data: bytes, path: Path) -> list[dict]:
        try:
            entries = json.loads(data)["keys"]
            for entry in entries:
                if (
                    entry["state"] not in PUBLISHED_STATES
                    or not isinstance(entry["kid"], str)
                    or not isinstance(entry["created_at"], int)
                    # Absent in manifests written before rotation existed, and on unretired keys.
                    or not isinstance(entry.get("retired_at", 0), int)
                ):
                    raise ValueError(f"bad entry {entry!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"the key manifest {path} is not valid: {exc}") from None
        return entries

    def _write_manifest(self, entries: list[dict]) -> None:
        """Write atomically, so a reader never sees a half-written manifest."""
        path = self.manifest_path
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": entries}, indent=2) + "\n")
        os.replace(tmp, path)

    @contextmanager
    def _locked(self):
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _entry(key: SigningKey) -> dict:
    return {"kid": key.kid, "state": key.state, "created_at": key.created_at}


def _version(status: os.stat_result) -> ManifestVersion:
    return (status.st_ino, status.st_mtime_ns, status.st_size)
