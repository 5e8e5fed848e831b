"""The three grants we serve, on Authlib's grant classes.

Each `create_token_response` mints the tokens, then *claims* the credential it redeems with one
conditional UPDATE (for a code, recording what it issued) in the same transaction, and commits
both together: of concurrent redemptions, one wins and the others' UPDATE matches nothing (their
tokens are rolled back, never sent), and a replay can always find (and revoke) what the winner
issued.
"""

from __future__ import annotations

import secrets
import time

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.util import scope_to_list

from ..storage import access_tokens, codes, refresh_tokens
from ..storage.db import session
from .id_tokens import SignIn

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class ClientScopeCheck:
    """RFC 6749 §3.3: refuse scopes the client is not registered for, rather than trimming them."""

    def validate_requested_scope(self):
        requested = scope_to_list(self.request.payload.scope) or []
        allowed = set(self.request.client.allowed_scopes)
        if not set(requested) <= allowed:
            raise InvalidScopeError("The client may not request some of these scopes.")


class AuthorizationCodeGrant(ClientScopeCheck, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]
    code_user = None  # the code's user, loaded with the code by query_authorization_code

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # A fixed message: Authlib's echoes the URI, and user input must not reach descriptions.
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri'.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return redirect_uri

    def validate_authorization_request(self):
        """Authlib's create_authorization_response validates the request again after
        get_consent_grant did (same request, same grant): the first result stands."""
        if self.redirect_uri is not None:
            return self.redirect_uri
        return super().validate_authorization_request()

    def create_authorization_response(self, redirect_uri, grant_user):
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        return status, body, self.server.with_issuer(headers)

    def generate_authorization_code(self):
        # 288 bits from the OS in one call (Authlib draws each of its 48 characters separately).
        return secrets.token_urlsafe(36)

    def save_authorization_code(self, code, request):
        codes.save_code(
            code,
            client_id=request.client.id,
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
            nonce=request.sign_in.nonce,
            auth_time=request.sign_in.auth_time,
            sid=request.sign_in.sid,
            expires_at=int(time.time()) + self.server.settings.authorization_code_ttl,
        )

    def query_authorization_code(self, code, client):
        found = codes.find_with_user(code, client.id)
        if found is None:
            return None
        row, self.code_user = found
        if row.expires_at <= time.time():
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice is denied, and its tokens are revoked.
            _revoke_issued_from(row)
            return None
        return row

    @hooked
    def create_token_response(self):
        client = self.request.client
        row = self.request.authorization_code
        user = self.code_user
        if not user.is_active:
            raise InvalidGrantError("The authorization code is no longer valid.")
        self.request.user = user
        issued = self.server.tokens.issue(
            client,
            user,
            row.scope,
            sign_in=SignIn(row.auth_time, row.sid, row.nonce),
            with_refresh=client.check_grant_type("refresh_token"),
        )
        db = session()
        code_id = row.id  # a rollback expires the rows loaded
        if not codes.claim(code_id, int(time.time()), issued.jti, issued.access_expires_at, issued.refresh_family):
            # A concurrent redemption won: drop these tokens, revoke what it issued (RFC 6749 §4.1.2).
            db.rollback()
            _revoke_issued_from(codes.find_by_id(code_id))
            raise InvalidGrantError("The authorization code has already been used.")
        db.commit()
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]
    token_user = None  # the token's user, loaded with the token by authenticate_refresh_token

    def authenticate_refresh_token(self, refresh_token):
        found = refresh_tokens.find_with_user(refresh_token)
        if found is None:
            return None
        row, self.token_user = found
        if row.revoked_at is not None or row.expires_at <= time.time():
            return None
        if row.used_at is not None:
            # Reuse of a rotated token means it leaked: revoke the whole family.
            refresh_tokens.revoke_family(row.family, int(time.time()))
            session().commit()
            return None
        return row

    def authenticate_user(self, refresh_token):
        return self.token_user if self.token_user.is_active else None

    @hooked
    def create_token_response(self):
        client = self.request.client
        row = self.request.refresh_token
        user = self.authenticate_user(row)
        if user is None:
            raise InvalidGrantError("The refresh token is no longer valid.")
        self.request.user = user
        issued = self.server.tokens.issue(
            client,
            user,
            self.request.payload.scope or row.scope,
            # OIDC Core §12.2: the original authentication, and no nonce.
            sign_in=SignIn(row.auth_time, row.sid),
            refresh_family=row.family,
            # The grant keeps its original scope even when this access token is narrowed.
            refresh_scope=row.scope,
            with_refresh=True,
        )
        db = session()
        family, now = row.family, int(time.time())  # a rollback expires the rows loaded
        if not refresh_tokens.claim(row.id, now):
            # A concurrent refresh with the same token won (or the family was revoked): reuse.
            db.rollback()
            refresh_tokens.revoke_family(family, now)
            db.commit()
            raise InvalidGrantError("The refresh token has already been used.")
        db.commit()
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(ClientScopeCheck, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    @hooked
    def create_token_response(self):
        client = self.request.client
        scope = client.get_allowed_scope(self.request.payload.scope)
        issued = self.server.tokens.issue(client, None, scope)
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER


def _revoke_issued_from(row) -> None:
    """Revoke what a code's first redemption issued (refresh family and access token), and commit."""
    if row.refresh_family:
        refresh_tokens.revoke_family(row.refresh_family, int(time.time()))
    if row.access_token_jti:
        # Two replays at once may both get here: the deny list takes the second quietly.
        access_tokens.deny(row.access_token_jti, row.access_token_expires_at)
    session().commit()
