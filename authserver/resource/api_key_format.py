"""The API key format, shared by the server (which issues keys) and resource services (which
refuse a mistyped key without a lookup):

    tdk_<random>_<checksum>

- `tdk_` lets leak scanners recognise a key (DESIGN.md, Secrets);
- `<random>`: 43 base62 characters encoding 32 random bytes (256 bits);
- `<checksum>`: 6 base62 characters, the CRC-32 of `tdk_<random>`. It catches typos and
  truncation offline; it is no secret and proves nothing about a key's validity.

Base62 keeps a key one "word" for double-click selection and free of `_` and `-`, so the two
separators are unambiguous.
"""

from __future__ import annotations

import re
import secrets
import zlib

PREFIX = "tdk_"
RANDOM_BYTES = 32
RANDOM_LENGTH = 43  # ceil(256 / log2(62))
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHAPE = re.compile(rf"tdk_([0-9A-Za-z]{{{RANDOM_LENGTH}}})_([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})")


def new_api_key() -> str:
    """A fresh key with 256 bits of randomness."""
    body = PREFIX + _base62(int.from_bytes(secrets.token_bytes(RANDOM_BYTES), "big"), RANDOM_LENGTH)
    return f"{body}_{_checksum(body)}"


def looks_like_api_key(credential: str) -> bool:
    """True for anything that claims to be an API key (the prefix), well-formed or not: such a
    credential is answered as an API key (INVALID_API_KEY), never tried as a JWT."""
    return credential.startswith(PREFIX)


def is_well_formed(key: object) -> bool:
    """The shape and checksum are right: worth a lookup. Cheap and constant in cost per length."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH:
        return False
    match = _SHAPE.fullmatch(key)
    if match is None:
        return False
    return secrets.compare_digest(_checksum(PREFIX + match.group(1)), match.group(2))


def display_parts(key: str) -> tuple[str, str]:
    """What may be shown after issuance: the first characters (`tdk_` and 6 more) and the last 4."""
    return key[: len(PREFIX) + 6], key[-4:]


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def _base62(number: int, length: int) -> str:
    digits = []
    for _ in range(length):
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))
