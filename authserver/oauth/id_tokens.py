"""OpenID Connect claims: the ID token (OIDC Core §2, §3.1.3.6) and the user claims that both the
ID token and userinfo release by scope (§5.4)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

ID_TOKEN_TYP = "JWT"
# Claims each scope releases (OIDC Core §5.4), as far as accounts hold them.
SCOPE_CLAIMS = {
    "profile": ("name",),
    "email": ("email", "email_verified"),
}
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid",
    "name", "email", "email_verified",
]


@dataclass(frozen=True)
class SignIn:
    """The browser authentication behind a user's grant: when it happened, which session, and the
    relying party's nonce (only for the code's first exchange; OIDC Core §12.2)."""

    auth_time: int | None = None
    sid: str | None = None
    nonce: str | None = None


def user_claims(user, scopes: list[str]) -> dict:
    values = {
        "name": user.name,
        "email": user.email,
        # Sign-up does not prove ownership of the address yet: say so rather than claim it.
        "email_verified": False,
    }
    claims = {"sub": user.public_id}
    for scope in scopes:
        for name in SCOPE_CLAIMS.get(scope, ()):
            claims[name] = values[name]
    return claims


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: base64url of the left half of SHA-256 of the access token (RS256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def id_token_claims(*, issuer: str, client_id: str, user, scopes: list[str], sign_in: SignIn,
                    access_token: str, now: int, ttl: int) -> dict:
    claims = {
        "iss": issuer,
        "aud": client_id,
        "azp": client_id,
        "iat": now,
        "exp": now + ttl,
        "at_hash": at_hash(access_token),
        **user_claims(user, scopes),
    }
    if sign_in.auth_time is not None:
        claims["auth_time"] = sign_in.auth_time
    if sign_in.sid:
        claims["sid"] = sign_in.sid
    if sign_in.nonce:
        claims["nonce"] = sign_in.nonce
    return claims
