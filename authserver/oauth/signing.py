"""Signs access tokens with the active key and publishes the JWKS; keys are loaded once."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import RSAKey

from .keys import KeyStore


class TokenSigner:
    def __init__(self, store: KeyStore):
        keys = store.load()
        self._active = store.active_key(keys)
        self._jwks = {"keys": [key.public_jwk() for key in keys]}
        self._public_keys = {key.kid: RSAKey.import_key(key.public_jwk()) for key in keys}

    @property
    def kid(self) -> str:
        return self._active.kid

    def sign(self, claims: dict, typ: str) -> str:
        # Name the active key by kid: given a key set without one, joserfc would pick at random.
        header = {"alg": "RS256", "typ": typ, "kid": self._active.kid}
        return jwt.encode(header, claims, self._active.key, algorithms=["RS256"])

    def jwks(self) -> dict:
        return self._jwks

    def public_key(self, kid) -> RSAKey:
        """A published key by kid; KeyError for any other (verification then fails closed)."""
        return self._public_keys[kid]
