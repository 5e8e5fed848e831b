"""What resource services import to accept the authorization server's credentials.

    from authserver.resource import TokenVerifier, InvalidToken

    verifier = TokenVerifier("https://auth.techdocs.com", "https://api.techdocs.com")
    principal = verifier.verify(token)   # or InvalidToken / TokenExpired

It verifies RS256 JWT access tokens locally with the issuer's published, cached JWKS. This
package imports none of the server's code (models, database, settings, Flask app) and no
SQLAlchemy; Flask is needed only by `authserver.resource.flask`, imported explicitly.
"""

from .errors import AuthError, InsufficientScope, InvalidToken, TokenExpired
from .jwks import JWKSCache
from .verifier import Principal, TokenVerifier

__all__ = [
    "AuthError",
    "InsufficientScope",
    "InvalidToken",
    "JWKSCache",
    "Principal",
    "TokenExpired",
    "TokenVerifier",
]
