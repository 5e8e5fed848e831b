"""Issued secrets: random, prefixed so leak scanners can recognise them, stored as SHA-256 digests.

A fast digest is enough because every secret carries at least 256 bits of entropy; a slow hash
would only cap token throughput (see DESIGN.md, Secrets).
"""

import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 bits


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def new_identifier(prefix: str) -> str:
    """A public identifier (not a secret): 96 random bits, hex."""
    return f"{prefix}_{secrets.token_hex(12)}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(secret: str, stored_digest: str | None) -> bool:
    """Constant-time check of a presented secret against a stored digest."""
    if not stored_digest:
        return False
    return hmac.compare_digest(digest(secret), stored_digest)
