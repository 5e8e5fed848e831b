"""Who an account-owner JSON API call (`/v1/api-keys`, `/v1/apps`) acts for, and the strict body
checks those APIs share.

Authentication, either:

- `Authorization: Bearer <access token>` of a user whose token has the `keys:manage` scope, else
  403 INSUFFICIENT_SCOPE with `WWW-Authenticate: Bearer error="insufficient_scope",
  scope="keys:manage"`. A client_credentials token (its subject is a client, not an account) is
  refused with 401 INVALID_TOKEN; an expired token gets 401 TOKEN_EXPIRED. No CSRF token: no
  cookie is the credential.
- or the browser session (signed in at `/login`); unsafe methods also send the session's CSRF
  token in the `X-CSRFToken` header, else 400 INVALID_REQUEST.

Neither: 401 INVALID_TOKEN with a `Bearer` challenge. A Bearer header wins over a session.
Blueprints that use `owner` exempt themselves from the global CSRF check (`csrf.exempt(bp)`),
because `owner` checks it for session-authenticated requests only.
"""

from __future__ import annotations

from flask import request
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from ..extensions import csrf
from ..storage.models import User
from .api_v1 import bearer_account, insufficient_scope, invalid_request, invalid_token

MANAGE_SCOPE = "keys:manage"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SHOWN_ONCE = {"Cache-Control": "no-store"}  # for responses that carry a secret


def owner() -> User:
    """The account the request acts for (see the module docstring), or an ApiError."""
    if "Authorization" in request.headers:
        user, claims = bearer_account()
        if MANAGE_SCOPE not in granted_scopes(claims.get("scope")):
            raise insufficient_scope(MANAGE_SCOPE)
        return user
    if not current_user.is_authenticated:
        raise invalid_token("Authentication is required: 'Authorization: Bearer <token>' or a signed-in session.")
    if request.method not in SAFE_METHODS:
        try:
            csrf.protect()
        except CSRFError:
            raise invalid_request("The CSRF token is missing or not valid: send the session's token in the "
                                  "X-CSRFToken header.") from None
    return current_user


def granted_scopes(scope) -> list:
    """Our access tokens carry a JSON array; a space-separated string is read too."""
    if isinstance(scope, str):
        return scope.split()
    return scope if isinstance(scope, list) else []


def fields(body: dict, allowed: set[str], required: set[str] = frozenset()) -> dict:
    """`body`, if it holds only `allowed` fields and all `required` ones; else 400."""
    if not set(body) <= allowed:
        raise invalid_request(f"The body may hold only: {', '.join(sorted(allowed))}.")
    if not required <= set(body):
        raise invalid_request(f"The body must hold: {', '.join(sorted(required))}.")
    return body
