"""`GET|POST /oauth/userinfo` (OIDC Core §5.3): the signed-in user's claims, by granted scope.
Bearer-token errors as RFC 6750 §3 says, with `WWW-Authenticate`."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..extensions import csrf, current_server, current_settings
from ..oauth.bearer import InvalidAccessToken
from ..oauth.id_tokens import user_claims
from ..oauth.requests import FORM
from ..storage import users

bp = Blueprint("userinfo", __name__, url_prefix="/oauth")


class BearerError(Exception):
    def __init__(self, status: int, error: str | None, description: str, scope: str | None = None):
        super().__init__(description)
        self.status, self.error, self.description, self.scope = status, error, description, scope


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    try:
        token = _bearer_token()
        claims = _verified_claims(token)
        user = users.find_by_public_id(claims["sub"]) if isinstance(claims.get("sub"), str) else None
        if user is None or not user.is_active:
            raise BearerError(401, "invalid_token", "The access token is not valid.")
        scopes = _scopes(claims)
        if "openid" not in scopes:
            raise BearerError(403, "insufficient_scope", "The access token lacks the openid scope.", scope="openid")
    except BearerError as error:
        return _challenge(error)
    response = jsonify(user_claims(user, scopes))
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_token() -> str:
    """RFC 6750 §2.1 (Authorization header) or §2.2 (form body); exactly one of them."""
    header = request.headers.get("Authorization")
    in_body = request.method == "POST" and request.mimetype == FORM and "access_token" in request.form
    if header and in_body:
        raise BearerError(400, "invalid_request", "Send the access token once, not twice.")
    if in_body:
        values = request.form.getlist("access_token")
        if len(values) != 1:
            raise BearerError(400, "invalid_request", "Send the access token once, not twice.")
        return values[0]
    if not header:
        raise BearerError(401, None, "An access token is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError(401, "invalid_token", "The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def _verified_claims(token: str) -> dict:
    try:
        return current_server().verify_access_token(token)
    except InvalidAccessToken as invalid:
        description = "The access token has expired." if invalid.expired else "The access token is not valid."
        raise BearerError(401, "invalid_token", description) from None


def _scopes(claims: dict) -> list[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list) and all(isinstance(item, str) for item in scope):
        return scope
    return []


def _challenge(error: BearerError):
    """RFC 6750 §3: the challenge names the error (none when no token was sent at all)."""
    parts = [f'realm="{current_settings().issuer}"']
    if error.error:
        parts += [f'error="{error.error}"', f'error_description="{error.description}"']
    if error.scope:
        parts.append(f'scope="{error.scope}"')
    response = jsonify(error=error.error or "invalid_token", error_description=error.description)
    response.status_code = error.status
    response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(parts)
    response.headers["Cache-Control"] = "no-store"
    return response
