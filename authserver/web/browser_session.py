"""The signed-in browser session: who, since when (auth_time) and which session (sid, the OpenID
Connect session id that ID tokens and logout refer to)."""

from __future__ import annotations

import secrets
import time

from flask import session
from flask_login import login_user, logout_user

from ..storage import refresh_tokens


def sign_in(user) -> None:
    session.clear()  # nothing from before sign-in survives it
    login_user(user)
    session["auth_time"] = int(time.time())
    session["sid"] = secrets.token_urlsafe(16)


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
