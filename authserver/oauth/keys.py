"""The signing key store: RSA private keys as PEM files plus a manifest naming each key's state.

Layout of the keys directory:
  keyset.json   {"keys": [{"kid": …, "state": "active"|"next"|"retired", "created_at": …}]}
  <kid>.pem     PKCS#8 private key, mode 0600

`kid` is the key's RFC 7638 thumbprint. Exactly one key is *active* (signs); *next* and
*retired* keys are only published. Keys are loaded once and kept in memory.
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

MANIFEST = "keyset.json"
PUBLISHED_STATES = ("active", "next", "retired")


class KeyStoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class SigningKey:
    kid: str
    state: str
    created_at: int
    key: RSAKey

    def public_jwk(self) -> dict:
        jwk = self.key.as_dict(private=False)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


class KeyStore:
    def __init__(self, directory: Path, key_size: int = 2048):
        self.directory = Path(directory)
        self.key_size = key_size

    # -- reading -------------------------------------------------------------

    def load(self) -> list[SigningKey]:
        """Read every key named by the manifest; a missing or unreadable key is an error."""
        keys = []
        for entry in self._read_manifest():
            path = self.directory / f"{entry['kid']}.pem"
            try:
                pem = path.read_bytes()
                private = serialization.load_pem_private_key(pem, password=None)
            except (OSError, ValueError, TypeError) as exc:
                raise KeyStoreError(f"signing key {entry['kid']} cannot be read from {path}: {exc}") from None
            if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < 2048:
                raise KeyStoreError(f"signing key {entry['kid']} is not an RSA key of 2048 bits or more")
            keys.append(
                SigningKey(entry["kid"], entry["state"], int(entry["created_at"]), RSAKey.import_key(pem))
            )
        return keys

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
            key = self._write_new_key(state)
            entries.append({"kid": key.kid, "state": key.state, "created_at": key.created_at})
            self._write_manifest(entries)
            return key

    def ensure_active(self) -> SigningKey:
        """The active key, generating it on first run (safe when several workers start at once)."""
        with self._locked():
            entries = self._read_manifest()
            if not any(e["state"] == "active" for e in entries):
                key = self._write_new_key("active")
                entries.append({"kid": key.kid, "state": key.state, "created_at": key.created_at})
                self._write_manifest(entries)
        return self.active_key()

    # -- internals -----------------------------------------------------------

    def _write_new_key(self, state: str) -> SigningKey:
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
        return SigningKey(kid, state, int(time.time()), key)

    def _read_manifest(self) -> list[dict]:
        path = self.directory / MANIFEST
        if not path.exists():
            return []
        try:
            entries = json.loads(path.read_text())["keys"]
            for entry in entries:
                if (
                    entry["state"] not in PUBLISHED_STATES
                    or not isinstance(entry["kid"], str)
                    or not isinstance(entry["created_at"], int)
                ):
                    raise ValueError(f"bad entry {entry!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"the key manifest {path} is not valid: {exc}") from None
        return entries

    def _write_manifest(self, entries: list[dict]) -> None:
        """Write atomically, so a reader never sees a half-written manifest."""
        path = self.directory / MANIFEST
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
