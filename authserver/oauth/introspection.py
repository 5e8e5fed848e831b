"""Token introspection (RFC 7662), on Authlib's IntrospectionEndpoint, for resource services.

- Callers are confidential clients that authenticate (§2.1: the endpoint MUST require
  authorization); a public client cannot, so it gets `invalid_client` like a missing one.
- A token is active only if it would be accepted right now: an access token that verifies (our
  signature, `at+jwt`, issuer, audience, not expired, not on the deny list) and whose client and
  user are still enabled; a refresh token that is neither revoked, rotated nor expired, of an
  enabled user; an API key that is neither revoked nor expired (a rotated key until its grace
  period ends), of an enabled user. Everything else, unknown tokens included, is
  `{"active": false}` and nothing more (§2.2: the response MUST NOT say why).
- Who may see what (§4, the server MAY limit it): any authenticated confidential client may
  introspect access tokens and API keys (resource services check tokens issued to other clients,
  and the keys their callers send); a refresh token only by the client it was issued to
  (resource services never receive refresh tokens).
- An API key is described as `{"active": true, "token_type": "api_key", "scope", "sub" (the
  owner's public id), "key_id", "iss", "iat" (created), "exp" (only if it expires), "plan",
  "username", "rate_limits"?}`, without `client_id`: no client holds it. An active answer counts
  as a use of the key (`last_used_at`, written in batches).
- The answer describes the present: `plan`, `username` and `rate_limits` (an enterprise
  account's custom limits, shaped as the access-token claim; absent otherwise) are the account's
  current ones, not the values the access token was minted with.
- `token_type_hint` (`access_token`, `refresh_token`, `api_key`) only orders the search (§2.1),
  as at revocation.

Token types are looked up through `lookups`, one entry per type.
"""

from __future__ import annotations

import time

from authlib.oauth2.rfc7662 import IntrospectionEndpoint as BaseIntrospectionEndpoint

from ..storage import api_keys, clients, refresh_tokens, users
from .bearer import InvalidAccessToken
from .grants import CLIENT_AUTH_METHODS
from .revocation import in_hint_order, require_token

class IntrospectionEndpoint(BaseIntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS  # confidential clients only

    def authenticate_token(self, request, client):
        """The active token's description, if `client` may see it; else None."""
        token = require_token(request)
        lookups = {
            # First without a hint: anything not shaped like a key is refused without a lookup.
            "api_key": self._api_key,
            "access_token": self._access_token,
            "refresh_token": self._refresh_token,
        }
        for lookup in in_hint_order(lookups, request.form.get("token_type_hint")):
            described = lookup(token, client)
            if described is not None:
                return described
        return None

    def create_introspection_payload(self, token):
        return {"active": True, **token} if token else {"active": False}

    def _access_token(self, token: str, caller) -> dict | None:
        try:
            claims = self.server.verify_access_token(token)
        except InvalidAccessToken:
            return None
        client = clients.find_active(claims.get("client_id"))
        if client is None:
            return None
        described = {
            "token_type": "Bearer",
            "scope": _scope_string(claims.get("scope")),
            "client_id": client.client_id,
            "sub": claims["sub"],
            "iss": claims["iss"],
            "aud": claims["aud"],
            "jti": claims["jti"],
            "iat": claims["iat"],
            "exp": claims["exp"],
        }
        if claims["sub"] == client.client_id:
            return described  # client_credentials: the client acts for itself, no account
        user = users.find_by_public_id(claims["sub"]) if isinstance(claims["sub"], str) else None
        if user is None or not user.is_active:
            return None
        return {**described, **_account(user)}

    def _refresh_token(self, token: str, caller) -> dict | None:
        row = refresh_tokens.find_refresh_token(token)
        if row is None or not row.check_client(caller):
            return None
        if row.revoked_at is not None or row.used_at is not None or row.expires_at <= time.time():
            return None
        user = users.get(row.user_id)
        if user is None or not user.is_active:
            return None
        return {
            "token_type": "refresh_token",
            "scope": row.scope,
            "client_id": caller.client_id,
            "sub": user.public_id,
            "iss": self.server.settings.issuer,
            "iat": row.issued_at,
            "exp": row.expires_at,
            **_account(user),
        }

    def _api_key(self, token: str, caller) -> dict | None:
        row = api_keys.find_usable(token)
        if row is None:
            return None
        api_keys.record_use(row.id)
        described = {
            "token_type": "api_key",
            "scope": row.scope,
            "sub": row.owner.public_id,
            "key_id": row.public_id,
            "iss": self.server.settings.issuer,
            "iat": row.created_at,
        }
        if row.expires_at is not None:
            described["exp"] = row.expires_at
        return {**described, **_account(row.owner)}


def _account(user) -> dict:
    described = {"plan": user.plan, "username": user.email}
    if user.rate_limits:  # as the access-token claim, from the account's current values
        described["rate_limits"] = user.rate_limits
    return described


def _scope_string(scope) -> str:
    """RFC 7662 §2.2: a space-separated string (our access tokens carry a JSON array)."""
    if isinstance(scope, list):
        return " ".join(item for item in scope if isinstance(item, str))
    return scope if isinstance(scope, str) else ""
