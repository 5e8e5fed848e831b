"""The token response a refresh rotation returned, sealed so that only the refresh token it replaced
can open it: a retry of that token within the grace window gets the same pair (oauth/grants.py).

The key is HKDF-SHA256 of the presented refresh token, with a salt of our own: the database keeps
only SHA-256 of the token (credentials.digest), from which the key cannot be computed, so a copy of
the database reveals nothing of the successor. AES-256-GCM authenticates the sealed text and binds
it to its row (the associated data), so it cannot be moved to another row or altered unnoticed.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
_SALT = b"authserver refresh-token successor"
_INFO = b"v1 aes-256-gcm"
_NONCE_BYTES = 12


def seal(token: str, binding: str, response: dict) -> str:
    """`response` encrypted under the key of `token`, bound to `binding` (the row it is stored in)."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(response, separators=(",", ":")).encode()
    sealed = nonce + AESGCM(_key(token)).encrypt(nonce, plaintext, binding.encode())
    return f"{VERSION}.{base64.urlsafe_b64encode(sealed).decode()}"


def unseal(token: str, binding: str, sealed: str | None) -> dict | None:
    """The response sealed under `token` for `binding`; None when there is none, or it does not open
    (another token, another row, altered)."""
    version, _, body = (sealed or "").partition(".")
    if version != VERSION:
        return None
    try:
        raw = base64.urlsafe_b64decode(body)
        nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return json.loads(AESGCM(_key(token)).decrypt(nonce, ciphertext, binding.encode()))
    except (ValueError, InvalidTag):
        return None


def _key(token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(token.encode())
