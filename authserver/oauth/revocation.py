"""Token revocation (RFC 7009), on Authlib's RevocationEndpoint.

- A refresh token revokes its whole family: every token rotated from the same grant (§2.1: revoking
  a refresh token ends the grant). Its state does not matter, a rotated or expired token still
  names its family; only a family already revoked is left as it is.
- An access token goes on the deny list by `jti` until its `exp` (§2.1: the server MAY revoke
  access tokens; ours are JWTs, so this is the only way). Only a token that verifies (our
  signature, not expired, not already denied) counts: anything else could name another token's
  jti.
- Unknown, invalid, expired or already revoked tokens: 200 and no change (§2.2: "invalid tokens do
  not cause an error response").
- A token issued to another client: refused with `invalid_grant` and no change (§2.1: the server
  "verifies whether the token was issued to the client making the revocation request. If this
  validation fails, the request is refused"; §2.2.1 reuses RFC 6749 §5.2, whose `invalid_grant`
  covers a grant or refresh token "issued to another client").
- `token_type_hint` only orders the search (§2.1: the server MUST extend its search to every type
  it supports). An unknown hint is ignored, which §2.1 allows ("MAY ignore this parameter"): we
  recognise every token type we issue, so `unsupported_token_type` never applies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as BaseRevocationEndpoint

from ..storage import access_tokens, refresh_tokens
from ..storage.db import session
from ..storage.models import RefreshToken
from .bearer import InvalidAccessToken
from .grants import CLIENT_AUTH_METHODS


@dataclass(frozen=True)
class RevocableAccessToken:
    claims: dict

    def check_client(self, client) -> bool:
        return self.claims.get("client_id") == client.client_id

    def revoke(self, now: int) -> None:
        access_tokens.deny_and_commit(self.claims["jti"], self.claims["exp"])


@dataclass(frozen=True)
class RevocableRefreshToken:
    row: RefreshToken

    def check_client(self, client) -> bool:
        return self.row.check_client(client)

    def revoke(self, now: int) -> None:
        refresh_tokens.revoke_family(self.row.family, now)
        session().commit()


def in_hint_order(lookups: dict, hint: str | None) -> list:
    """The lookups, the hinted type's first (RFC 7009 §2.1, RFC 7662 §2.1)."""
    first = lookups.get(hint)
    return [first, *(lookup for lookup in lookups.values() if lookup is not first)] if first else list(lookups.values())


def require_token(request) -> str:
    token = request.form.get("token")
    if not token:
        raise InvalidRequestError("Missing 'token'.")
    return token


class RevocationEndpoint(BaseRevocationEndpoint):
    # Confidential clients authenticate as they do at the token endpoint; public clients, which
    # have no credentials, identify with client_id (RFC 7009 §2.1, §5).
    CLIENT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]

    def authenticate_token(self, request, client):
        token = self.query_token(require_token(request), request.form.get("token_type_hint"))
        if token is not None and not token.check_client(client):
            raise InvalidGrantError("The token was issued to another client.")
        return token

    def query_token(self, token_string, token_type_hint):
        lookups = {"access_token": self._access_token, "refresh_token": self._refresh_token}
        for lookup in in_hint_order(lookups, token_type_hint):
            token = lookup(token_string)
            if token is not None:
                return token
        return None

    def revoke_token(self, token, request):
        token.revoke(int(time.time()))

    def _access_token(self, token: str) -> RevocableAccessToken | None:
        try:
            claims = self.server.verify_access_token(token)
        except InvalidAccessToken:
            return None
        return RevocableAccessToken(claims)

    def _refresh_token(self, token: str) -> RevocableRefreshToken | None:
        row = refresh_tokens.find_refresh_token(token)
        if row is None or row.revoked_at is not None:
            return None
        return RevocableRefreshToken(row)
