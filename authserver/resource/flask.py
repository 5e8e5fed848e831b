"""Flask integration: protect a view with `@require_auth("scope", …)`.

    from authserver.resource import APIKeyVerifier, TokenVerifier
    from authserver.resource.flask import ResourceAuth, current_principal, require_auth

    tokens = TokenVerifier(issuer, audience)
    ResourceAuth(app, tokens, api_keys=APIKeyVerifier.from_discovery(tokens.keys, client_id, client_secret))

    @app.get("/v1/things")
    @require_auth("read:things")
    def things():
        return {"owner": current_principal().subject}

The credential is read from `Authorization: Bearer <credential>` (RFC 6750 §2.1) and nowhere else
(no query or form parameter). A credential starting with `tdk_` is an API key, checked by the
`api_keys` verifier (without one, every API key is refused); anything else is a JWT access token.
Failures answer with the product's envelope `{"error": {"code", "message", "status"}}` and a
`WWW-Authenticate: Bearer` challenge (RFC 6750 §3):

- no Bearer credentials at all (no header, an empty one, another scheme): 401 INVALID_TOKEN with a
  bare `Bearer realm="…"` (§3.1: no error code when the client sent no authentication information)
- a malformed header or a token that does not verify: 401 INVALID_TOKEN, `error="invalid_token"`
- an expired token: 401 TOKEN_EXPIRED, `error="invalid_token"`
- an API key that does not verify (mistyped, unknown, revoked, expired, or none accepted here):
  401 INVALID_API_KEY, `error="invalid_token"`
- missing scopes: 403 INSUFFICIENT_SCOPE, `error="insufficient_scope", scope="…"` (the scopes required)
- an API key the authorization server could not check (unreachable, failing): 503
  SERVICE_UNAVAILABLE with `Retry-After: 5` and no challenge (the key is not known to be bad)
"""

from __future__ import annotations

import functools
import re

from flask import Flask, current_app, g, jsonify, request

from .api_key_format import looks_like_api_key
from .api_keys import APIKeyVerifier
from .errors import AuthError, InsufficientScope, InvalidAPIKey, InvalidToken, ServiceUnavailable
from .verifier import Principal, TokenVerifier

EXTENSION = "authserver.resource"
# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; we allow exactly one space.
_BEARER = re.compile(r"([A-Za-z0-9!#$%&'*+.^_`|~-]+) ([A-Za-z0-9\-._~+/]+=*)")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")  # RFC 6749 §3.3 scope-token
RETRY_AFTER_SECONDS = 5  # on a 503: the authorization server is probably back by then


class _NoCredentials(InvalidToken):
    """No Bearer credentials were sent: the challenge carries no error code (RFC 6750 §3.1)."""


class ResourceAuth:
    """The verifier a Flask app's protected views use, registered in `app.extensions`."""

    def __init__(self, app: Flask | None = None, verifier: TokenVerifier | None = None,
                 api_keys: APIKeyVerifier | None = None, *, realm: str | None = None):
        """`api_keys`: the API key verifier (None: API keys are refused). `realm` for the
        challenges; by default the verifier's audience."""
        self.verifier = verifier
        self.api_keys = api_keys
        self.realm = realm
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if self.verifier is None:
            raise ValueError("ResourceAuth needs a TokenVerifier")
        if self.realm is None:
            self.realm = self.verifier.audience
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("the realm cannot contain a quote or a backslash")
        app.extensions[EXTENSION] = self

    def authenticate(self) -> Principal:
        """The principal of the current request, or an AuthError."""
        credential = _bearer_token()
        if not looks_like_api_key(credential):
            return self.verifier.verify(credential)
        if self.api_keys is None:
            raise InvalidAPIKey("this service accepts no API keys")
        return self.api_keys.verify(credential)

    def error_response(self, error: AuthError):
        response = jsonify(error.envelope())
        response.status_code = error.status
        response.headers["Cache-Control"] = "no-store"
        if isinstance(error, ServiceUnavailable):
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        else:
            response.headers["WWW-Authenticate"] = self._challenge(error)
        return response

    def _challenge(self, error: AuthError) -> str:
        parts = [f'realm="{self.realm}"']
        if isinstance(error, InsufficientScope):
            parts += ['error="insufficient_scope"', f'scope="{" ".join(error.required)}"']
        elif not isinstance(error, _NoCredentials):
            parts.append('error="invalid_token"')
        return "Bearer " + ", ".join(parts)


def require_auth(*scopes: str):
    """Decorate a view: it runs only for a request with a valid access token or API key granting
    every one of `scopes`, with the principal in `flask.g.principal` (see `current_principal`)."""
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"not a scope: {scope!r}")

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            auth = _extension()
            try:
                principal = auth.authenticate()
                if not principal.has_scopes(*scopes):
                    raise InsufficientScope(scopes, f"{principal.subject} lacks one of {scopes}")
            except AuthError as error:
                return auth.error_response(error)
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_principal() -> Principal:
    """The principal of the request being handled by a `require_auth` view."""
    principal = g.get("principal")
    if principal is None:
        raise RuntimeError("current_principal() is only available in a view decorated with require_auth")
    return principal


def _extension() -> ResourceAuth:
    try:
        return current_app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("require_auth needs ResourceAuth(app, verifier) first") from None


def _bearer_token() -> str:
    # WSGI has one HTTP_AUTHORIZATION: a repeated header arrives joined with ", " (RFC 9110 §5.3),
    # which the strict grammar below refuses, so two credentials never pass as one.
    value = request.headers.get("Authorization", "")
    if not value.strip():
        raise _NoCredentials("no Authorization header")
    scheme = value.split(maxsplit=1)[0]
    if scheme.lower() != "bearer":  # RFC 7235 §2.1: the scheme is case-insensitive
        raise _NoCredentials(f"scheme {scheme!r}")  # RFC 6750 §3.1: an unsupported method
    match = _BEARER.fullmatch(value)
    if match is None:
        raise InvalidToken("malformed Bearer credentials")
    return match.group(2)
