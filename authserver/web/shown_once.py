"""A secret shown once, on the page a form redirects to (POST → redirect → GET), carried by the
session without the cookie ever holding it readably.

Why not simply: the session cookie is signed, not encrypted (anyone who sees the cookie can read
what is in it), and the server keeps no session state (several workers, no shared store needed).
Rendering the secret in the POST response instead would make a reload re-send the form and
create another secret.

So `keep` puts the value in the session sealed with Fernet (AES-CBC + HMAC-SHA256) under a key
derived from SECRET_KEY for this purpose only; `take` removes it from the session and opens it,
once. A sealed value older than MAX_AGE_SECONDS is dropped unread: the redirect is followed at
once, and a stale one should not turn up on a later visit. What remains: a copy of the cookie
taken before the page was shown, replayed within MAX_AGE_SECONDS, would show the secret again,
to someone who holds the signed-in session anyway.
"""

from __future__ import annotations

import base64
import json
import time

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, session

MAX_AGE_SECONDS = 300
SESSION_PREFIX = "shown_once."
PURPOSE = b"authserver: secrets shown once, sealed in the session"


def keep(name: str, value: dict, now: float | None = None) -> None:
    """Seal `value` (JSON) in the session under `name`, replacing one kept before."""
    sealed = _fernet().encrypt_at_time(json.dumps(value).encode(), int(time.time() if now is None else now))
    session[SESSION_PREFIX + name] = sealed.decode()


def take(name: str) -> dict | None:
    """The value kept under `name`, removed from the session; None if there is none, or it is too
    old or not sealed by this server."""
    sealed = session.pop(SESSION_PREFIX + name, None)
    if not isinstance(sealed, str):
        return None
    try:
        return json.loads(_fernet().decrypt(sealed.encode(), ttl=MAX_AGE_SECONDS))
    except InvalidToken:
        return None


def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        secret.encode() if isinstance(secret, str) else secret)
    return Fernet(base64.urlsafe_b64encode(key))
