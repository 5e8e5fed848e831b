"""Discovery (RFC 8414, OpenID Connect Discovery) and the JWKS.

Both are served from prepared bytes: the discovery document is serialised once per app (its
settings are fixed per process), the JWKS once per key ring (`TokenSigner.jwks_json`, which
follows key rotations). Each carries a strong ETag computed from those bytes, so that a cache
holding them may revalidate with If-None-Match and get a 304 without a body.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from flask import Blueprint, Response, current_app, request
from werkzeug.http import parse_etags

from ..extensions import SETTINGS_KEY, current_server
from ..oauth.id_tokens import CLAIMS_SUPPORTED
from ..oauth.oidc_request import PROMPT_VALUES
from ..oauth.scopes import SCOPES
from ..oauth.signing import JWKS_MAX_AGE

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

# Keys are published ahead of use (state "next"), so verifiers may cache the JWKS for
# JWKS_MAX_AGE; `keys rotate` relies on that value (oauth/signing.py).
METADATA_MAX_AGE = 3600
JWKS_CACHE_CONTROL = f"public, max-age={JWKS_MAX_AGE}"
METADATA_CACHE_CONTROL = f"public, max-age={METADATA_MAX_AGE}"
METADATA_KEY = "authserver.discovery_document"


@bp.get("/jwks.json")
def jwks():
    return _serve(current_server().tokens.signer.jwks_json(), JWKS_CACHE_CONTROL)


@bp.get("/openid-configuration")
@bp.get("/oauth-authorization-server")
def metadata():
    """OpenID Connect Discovery 1.0 §3 and RFC 8414 §2: one document, every entry true."""
    return _serve(current_app.extensions[METADATA_KEY], METADATA_CACHE_CONTROL)


def _prepare_metadata(state) -> None:
    """At registration, once per app: create_app has put the settings in place by then."""
    state.app.extensions[METADATA_KEY] = _json(_metadata(state.app.extensions[SETTINGS_KEY].issuer))


bp.record_once(_prepare_metadata)


def _metadata(issuer: str) -> dict:
    client_auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    return dict(
        issuer=issuer,
        authorization_endpoint=f"{issuer}/oauth/authorize",
        token_endpoint=f"{issuer}/oauth/token",
        userinfo_endpoint=f"{issuer}/oauth/userinfo",
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        end_session_endpoint=f"{issuer}/oauth/logout",
        revocation_endpoint=f"{issuer}/oauth/revoke",
        introspection_endpoint=f"{issuer}/oauth/introspect",
        scopes_supported=list(SCOPES),
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["RS256"],
        token_endpoint_auth_methods_supported=client_auth_methods,
        # RFC 7009 §2.1: public clients revoke their own tokens by client_id alone.
        revocation_endpoint_auth_methods_supported=client_auth_methods,
        # RFC 7662 §2.1: only authenticated (confidential) clients may introspect.
        introspection_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        code_challenge_methods_supported=["S256"],
        claims_supported=CLAIMS_SUPPORTED,
        prompt_values_supported=list(PROMPT_VALUES),
        claims_parameter_supported=False,
        request_parameter_supported=False,
        request_uri_parameter_supported=False,
        authorization_response_iss_parameter_supported=True,
    )


def _json(document: dict) -> bytes:
    """The bytes jsonify would write (sorted keys, compact, a final newline)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _serve(body: bytes, cache_control: str) -> Response:
    etag, headers = _prepared(body, cache_control)
    if_none_match = request.environ.get("HTTP_IF_NONE_MATCH")
    # RFC 9110 §13.1.2: If-None-Match compares weakly; "*" matches any current representation.
    if if_none_match and parse_etags(if_none_match).contains_weak(etag):
        # RFC 9110 §15.4.5: a 304 carries the Cache-Control and ETag the 200 would have.
        return Response(status=304, headers=headers[1:])
    return Response(body, headers=headers)


@lru_cache(maxsize=16)
def _prepared(body: bytes, cache_control: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The ETag of `body` and the headers to serve it with; a new key ring brings new bytes and so
    a new entry (bytes cache their hash: a hit costs no hashing of the body)."""
    etag = hashlib.sha256(body).hexdigest()[:32]
    return etag, (("Content-Type", "application/json"), ("Cache-Control", cache_control), ("ETag", f'"{etag}"'))
