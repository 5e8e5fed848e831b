"""Discovery (RFC 8414, OpenID Connect Discovery) and the JWKS."""

from flask import Blueprint, jsonify

from ..extensions import current_server, current_settings
from ..oauth.id_tokens import CLAIMS_SUPPORTED
from ..oauth.oidc_request import PROMPT_VALUES
from ..oauth.scopes import SCOPES
from ..oauth.signing import JWKS_MAX_AGE

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

# Keys are published ahead of use (state "next"), so verifiers may cache the JWKS for
# JWKS_MAX_AGE; `keys rotate` relies on that value (oauth/signing.py).
METADATA_MAX_AGE = 3600


@bp.get("/jwks.json")
def jwks():
    response = jsonify(current_server().tokens.signer.jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response


@bp.get("/openid-configuration")
@bp.get("/oauth-authorization-server")
def metadata():
    """OpenID Connect Discovery 1.0 §3 and RFC 8414 §2: one document, every entry true."""
    issuer = current_settings().issuer
    client_auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    response = jsonify(
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
    response.headers["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    return response
