"""Verifies this server's own tokens where it accepts them: access tokens (userinfo, revocation,
introspection) and ID tokens given back as logout hints. Fails closed: anything not provably
valid is refused.

Verification options are spelled out on purpose, even where they are joserfc's defaults.
"""

from __future__ import annotations

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry

from ..storage import access_tokens
from .id_tokens import ID_TOKEN_TYP
from .signing import TokenSigner

ACCESS_TOKEN_TYP = "at+jwt"
LEEWAY_SECONDS = 30


class InvalidAccessToken(Exception):
    """The token is not one of ours, was tampered with, or is revoked (`expired` says if it only expired)."""

    def __init__(self, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def verify_access_token(token: str, signer: TokenSigner, *, issuer: str, audience: str) -> dict:
    """The token's claims, or InvalidAccessToken."""
    decoded = _decode(token, signer)
    if decoded.header.get("typ") != ACCESS_TOKEN_TYP:
        raise InvalidAccessToken()  # RFC 9068 §4: an ID token is not an access token
    registry = JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        jti={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except ExpiredTokenError:
        raise InvalidAccessToken(expired=True) from None
    except JoseError:
        raise InvalidAccessToken() from None
    if access_tokens.is_denied(decoded.claims["jti"]):
        raise InvalidAccessToken()
    return decoded.claims


def verify_id_token_hint(token: str, signer: TokenSigner, *, issuer: str) -> dict:
    """An ID token we issued, expired or not (OIDC RP-Initiated Logout §2 accepts expired hints)."""
    decoded = _decode(token, signer)
    if decoded.header.get("typ") != ID_TOKEN_TYP:
        raise InvalidAccessToken()
    registry = JWTClaimsRegistry(iss={"essential": True, "value": issuer}, sub={"essential": True},
                                 aud={"essential": True})
    try:
        registry.validate(decoded.claims)  # no exp check: deliberate, see above
    except JoseError:
        raise InvalidAccessToken() from None
    return decoded.claims


def _decode(token: str, signer: TokenSigner):
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
        raise InvalidAccessToken()
    try:
        # RS256 only, and only with a key we publish, chosen by the token's kid.
        return jwt.decode(token, lambda obj: signer.public_key(obj.headers().get("kid")), algorithms=["RS256"])
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidAccessToken() from None
