"""The signed-in browser session: who, since when (auth_time), which session (sid, the OpenID
Connect session id that ID tokens and logout refer to), and a stamp of the password it was
opened with: changing the password ends every other session (the cookie is the session, so
there is nothing on the server to delete; the stamp no longer matches instead)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import current_app, session
from flask_login import login_user, logout_user

from ..storage import refresh_tokens


def sign_in(user) -> None:
    session.clear()  # nothing from before sign-in survives it
    login_user(user)
    session["auth_time"] = int(time.time())
    session["sid"] = secrets.token_urlsafe(16)
    session["password_stamp"] = _password_stamp(user)


def is_current(user) -> bool:
    """Whether this session was opened with the user's current password."""
    return hmac.compare_digest(session.get("password_stamp", ""), _password_stamp(user))


def password_changed(user) -> None:
    """Keep this session (and its sid, auth_time) valid after its user changed the password."""
    session["password_stamp"] = _password_stamp(user)


def sign_out() -> None:
    """End the session and revoke the refresh tokens bound to it (those without offline_access)."""
    sid = session.get("sid")
    logout_user()
    session.clear()
    if sid:
        refresh_tokens.revoke_session(sid, int(time.time()))


def auth_time() -> int | None:
    return session.get("auth_time")


def sid() -> str | None:
    return session.get("sid")


def _password_stamp(user) -> str:
    """A keyed digest of the password hash: it changes with the password, and the (readable)
    cookie reveals nothing about the hash."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, user.password_hash.encode(), hashlib.sha256).hexdigest()[:32]
