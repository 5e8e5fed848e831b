"""Mints what the token endpoint returns: an RS256 JWT access token (RFC 9068 shape), an ID token
for `openid` grants, and, where the grant allows, an opaque refresh token whose digest joins the
current transaction."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from .. import credentials
from ..storage import refresh_tokens
from .id_tokens import ID_TOKEN_TYP, SignIn, id_token_claims
from .signing import TokenSigner

REFRESH_TOKEN_PREFIX = "tdr"


@dataclass(frozen=True)
class IssuedTokens:
    response: dict
    jti: str
    access_expires_at: int
    refresh_family: str | None


class TokenIssuer:
    def __init__(self, signer: TokenSigner, *, issuer: str, audience: str, access_ttl: int, refresh_ttl: int):
        self.signer = signer
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def issue(self, client, user, scope: str, *, sign_in: SignIn = SignIn(), refresh_family: str | None = None,
              refresh_scope: str | None = None, with_refresh: bool = False) -> IssuedTokens:
        """Mint the token response. `refresh_family` continues a rotated family; otherwise a
        refresh token (when `with_refresh`) starts a new one. The caller commits."""
        now = int(time.time())
        jti = secrets.token_urlsafe(16)
        scopes = scope.split()
        access_token = self.signer.sign(self._claims(client, user, scopes, jti, now), typ="at+jwt")
        response = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "scope": scope,
        }
        if user is not None and "openid" in scopes:
            claims = id_token_claims(issuer=self.issuer, client_id=client.client_id, user=user, scopes=scopes,
                                     sign_in=sign_in, access_token=access_token, now=now, ttl=self.access_ttl)
            response["id_token"] = self.signer.sign(claims, typ=ID_TOKEN_TYP)
        family = None
        if with_refresh:
            family = refresh_family or secrets.token_urlsafe(16)
            refresh_token = credentials.new_secret(REFRESH_TOKEN_PREFIX)
            grant_scope = refresh_scope if refresh_scope is not None else scope
            refresh_tokens.save_refresh_token(
                refresh_token,
                family=family,
                client_id=client.id,
                user_id=user.id,
                scope=grant_scope,
                auth_time=sign_in.auth_time,
                # The session the grant was authenticated in, repeated in the ID tokens a refresh
                # issues (OIDC Core §12.2), so that RP-Initiated Logout can match them to it. Signing
                # out revokes the grant unless it has offline_access (§11; refresh_tokens.revoke_session).
                sid=sign_in.sid,
                access_token_jti=jti,
                access_token_expires_at=now + self.access_ttl,
                issued_at=now,
                expires_at=now + self.refresh_ttl,
            )
            response["refresh_token"] = refresh_token
        return IssuedTokens(response, jti, now + self.access_ttl, family)

    def _claims(self, client, user, scopes: list[str], jti: str, now: int) -> dict:
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            # client_credentials: the client acts for itself, so it is the subject.
            "sub": user.public_id if user else client.client_id,
            "client_id": client.client_id,
            "jti": jti,
            "iat": now,
            "exp": now + self.access_ttl,
            "scope": scopes,
        }
        if user:
            claims.update(name=user.name, email=user.email, plan=user.plan)
            if user.rate_limits:  # enterprise with custom limits only; just the limits that are set
                claims["rate_limits"] = user.rate_limits
        return claims
