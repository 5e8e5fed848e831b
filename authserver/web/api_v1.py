"""`/v1`: the product's JSON API. Every error here is the envelope
`{"error": {"code", "message", "status"}}` (DESIGN.md, Errors); those Flask raises itself (404,
405, 413, 500) are rendered the same way by `errors.py`.

`POST /v1/auth/refresh` takes `{"refresh_token": "…"}` and answers exactly what the token
endpoint's refresh_token grant answers, because it runs that grant on the same server: rotation
and reuse detection are the token endpoint's. A public client sends nothing more (it is the
client the token was issued to); a confidential client also authenticates, with the method it is
registered for (HTTP Basic, or `client_id` and `client_secret` in the JSON), as at the token
endpoint.

401 challenges: `INVALID_CLIENT` asks for client credentials, which are sent with HTTP Basic, so
its challenge is `Basic` (RFC 6749 §5.2 asks for the scheme the client authenticates with; a
`Bearer` challenge would name a credential that cannot fix the problem). `INVALID_TOKEN` and
`TOKEN_EXPIRED` carry `Bearer` with `error="invalid_token"` (RFC 6750 §3), as DESIGN.md says;
403 `INSUFFICIENT_SCOPE` carries `Bearer` with `error="insufficient_scope"` and the scope needed.

Shared by the `/v1` blueprints: `ApiError` and its renderer, `bearer_account` (a user's access
token) and `json_object` (a strict JSON object body).
"""

from __future__ import annotations

import json
import time

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, request
from werkzeug.datastructures import MultiDict

from ..errors import envelope_error
from ..extensions import csrf, current_server, current_settings
from ..oauth.bearer import InvalidAccessToken
from ..oauth.requests import JSON, OAuthRequest, token_params
from ..storage import refresh_tokens, users
from ..storage.models import User

bp = Blueprint("api_v1", __name__, url_prefix="/v1")

REFRESH_FIELDS = {"refresh_token", "client_id", "client_secret"}
CLIENT_CREDENTIAL_FIELDS = {"client_id", "client_secret"}


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int, scheme: str | None = None, scope: str | None = None,
                 retry_after: str | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.scheme = code, message, status, scheme
        self.scope = scope  # the scope a Bearer token lacks (INSUFFICIENT_SCOPE)
        self.retry_after = retry_after  # seconds, for a 429


def invalid_request(message: str) -> ApiError:
    return ApiError("INVALID_REQUEST", message, 400)


def invalid_client(message: str = "Client authentication failed.") -> ApiError:
    return ApiError("INVALID_CLIENT", message, 401, scheme="Basic")


def invalid_token(message: str = "The refresh token is not valid.") -> ApiError:
    return ApiError("INVALID_TOKEN", message, 401, scheme="Bearer")


def insufficient_scope(scope: str) -> ApiError:
    return ApiError("INSUFFICIENT_SCOPE", f"The access token lacks the '{scope}' scope.", 403, scheme="Bearer",
                    scope=scope)


@bp.errorhandler(ApiError)
def render_api_error(error: ApiError):
    body, status = envelope_error(error.code, error.message, error.status)
    headers = {"Cache-Control": "no-store"}
    realm = f'realm="{current_settings().issuer}"'
    if error.scheme == "Basic":
        headers["WWW-Authenticate"] = f'Basic {realm}, charset="UTF-8"'
    elif error.scheme == "Bearer" and error.scope:
        headers["WWW-Authenticate"] = f'Bearer {realm}, error="insufficient_scope", scope="{error.scope}"'
    elif error.scheme == "Bearer":
        headers["WWW-Authenticate"] = f'Bearer {realm}, error="invalid_token", error_description="{error.message}"'
    if error.retry_after:
        headers["Retry-After"] = error.retry_after
    return body, status, headers


@bp.post("/auth/refresh")
@csrf.exempt  # no cookies: the refresh token and client credentials are the authentication
def refresh():
    params = _json_body(REFRESH_FIELDS)
    token = params.get("refresh_token")
    if not token:
        raise invalid_request("Missing 'refresh_token'.")

    row, issued_to = refresh_tokens.find_with_client_id(token) or (None, None)
    grant_params = MultiDict({**params.to_dict(), "grant_type": "refresh_token"})
    if "Authorization" not in request.headers and not CLIENT_CREDENTIAL_FIELDS & set(params):
        if row is None:
            raise invalid_token()  # no such token and no client: nothing to run the grant for
        # The client the token was issued to: a public one needs nothing more, and a confidential
        # one fails its authentication in the grant, exactly as at the token endpoint.
        grant_params["client_id"] = issued_to
    expired = row is not None and _only_expired(row)

    try:
        oauth_request = OAuthRequest(request, grant_params)
    except OAuth2Error as error:  # insecure transport
        raise invalid_request(error.description or "The request is not valid.") from None
    response = current_server().create_token_response(oauth_request)
    if response.status_code == 200:
        return response
    # Only the client the token was issued to learns that it merely expired.
    caller = oauth_request.client
    raise _from_grant_error(response, expired=expired and caller is not None and row.check_client(caller))


def bearer_account() -> tuple[User, dict]:
    """The enabled account whose access token (`Authorization: Bearer`) authenticates the request,
    with the token's claims. A client_credentials token's subject is a client: refused."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token("An access token is required: 'Authorization: Bearer <token>'.")
    try:
        claims = current_server().verify_access_token(token.strip())
    except InvalidAccessToken as invalid:
        if invalid.expired:
            raise ApiError("TOKEN_EXPIRED", "The access token has expired.", 401, scheme="Bearer") from None
        raise invalid_token("The access token is not valid.") from None
    user = users.find_by_public_id(claims["sub"]) if isinstance(claims.get("sub"), str) else None
    if user is None or not user.is_active:
        raise invalid_token("The access token does not belong to an account.")
    return user, claims


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise _RepeatedKey()
    return dict(pairs)


def _reject_constant(name: str):
    raise ValueError(name)  # NaN, Infinity


def json_object() -> dict:
    """The body: an `application/json` object without repeated fields or NaN/Infinity."""
    if request.mimetype != JSON:
        raise invalid_request("The body must be application/json.")
    try:
        body = json.loads(request.get_data(), object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except _RepeatedKey:
        raise invalid_request("The body repeats a field.") from None
    except (ValueError, RecursionError):
        raise invalid_request("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_request("The body must be a JSON object.")
    return body


def _json_body(fields: set[str]) -> MultiDict:
    """A flat JSON object of strings (the token endpoint's rules), holding only `fields`."""
    if request.mimetype != JSON:
        raise invalid_request("The body must be application/json.")
    try:
        params = token_params(request)
    except OAuth2Error as error:
        raise invalid_request(error.description) from None
    if not set(params) <= fields:
        raise invalid_request(f"The body may hold only {', '.join(sorted(fields))}.")
    return params


def _only_expired(row) -> bool:
    """Expired, and otherwise still good (neither rotated nor revoked): TOKEN_EXPIRED, not INVALID_TOKEN."""
    return row.revoked_at is None and row.used_at is None and row.expires_at <= time.time()


def _from_grant_error(response, *, expired: bool) -> ApiError:
    """The token endpoint's RFC 6749 §5.2 error, in the envelope."""
    body = response.get_json()
    error = body.get("error")
    if response.status_code == 429:  # failed client authentications throttled (client_auth_limits)
        return ApiError("RATE_LIMIT_EXCEEDED", body.get("error_description") or "Too many requests.", 429,
                        retry_after=response.headers.get("Retry-After"))
    if error == "invalid_client":
        return invalid_client()
    if error == "unauthorized_client":
        return invalid_client("The client may not refresh tokens.")
    if error == "invalid_grant":
        if expired:
            return ApiError("TOKEN_EXPIRED", "The refresh token has expired.", 401, scheme="Bearer")
        return invalid_token()
    if response.status_code >= 500:
        return ApiError("INTERNAL_ERROR", "The server could not complete the request.", 500)
    return invalid_request(body.get("error_description") or "The request is not valid.")
