"""What resource services import to accept the authorization server's credentials.

    from authserver.resource import TokenVerifier, InvalidToken

    verifier = TokenVerifier("https://auth.techdocs.com", "https://api.techdocs.com")
    principal = verifier.verify(token)   # or InvalidToken / TokenExpired

It verifies RS256 JWT access tokens locally with the issuer's published, cached JWKS, and API
keys (`tdk_…`) by introspection at the issuer, cached briefly:

    api_keys = APIKeyVerifier.from_discovery(verifier.keys, client_id, client_secret)
    principal = api_keys.verify(key)     # or InvalidAPIKey / ServiceUnavailable

This package imports none of the server's code (models, database, settings, Flask app) and no
SQLAlchemy; Flask is needed only by `authserver.resource.flask`, imported explicitly.
"""

from .api_keys import APIKeyVerifier
from .errors import AuthError, InsufficientScope, InvalidAPIKey, InvalidToken, ServiceUnavailable, TokenExpired
from .jwks import JWKSCache
from .verifier import Principal, TokenVerifier

__all__ = [
    "APIKeyVerifier",
    "AuthError",
    "InsufficientScope",
    "InvalidAPIKey",
    "InvalidToken",
    "JWKSCache",
    "Principal",
    "ServiceUnavailable",
    "TokenExpired",
    "TokenVerifier",
]
