"""Discovery (RFC 8414, OpenID Connect Discovery) and the JWKS."""

from flask import Blueprint, jsonify

from ..extensions import current_server, current_settings
from ..oauth.scopes import SCOPES

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

# Keys are published ahead of use (state "next"), so verifiers may cache this long.
JWKS_MAX_AGE = 300
METADATA_MAX_AGE = 3600


@bp.get("/jwks.json")
def jwks():
    response = jsonify(current_server().tokens.signer.jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response


@bp.get("/openid-configuration")
@bp.get("/oauth-authorization-server")
def metadata():
    issuer = current_settings().issuer
    response = jsonify(
        issuer=issuer,
        authorization_endpoint=f"{issuer}/oauth/authorize",
        token_endpoint=f"{issuer}/oauth/token",
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        scopes_supported=list(SCOPES),
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
        authorization_response_iss_parameter_supported=True,
    )
    response.headers["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    return response
