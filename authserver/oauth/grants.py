"""The three grants we serve, on Authlib's grant classes.

Each `create_token_response` first *claims* the credential it redeems with one conditional
UPDATE, then mints tokens in the same transaction, so concurrent redemptions cannot both win and
a replay can always find (and revoke) what the first redemption issued.
"""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.util import scope_to_list

from ..storage import access_tokens, codes, refresh_tokens, users
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

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # A fixed message: Authlib's echoes the URI, and user input must not reach descriptions.
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri'.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return redirect_uri

    def create_authorization_response(self, redirect_uri, grant_user):
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        return status, body, self.server.with_issuer(headers)

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
        row = codes.find_code(code, client.id)
        if row is None or row.expires_at <= time.time():
            return None
        if row.used_at is not None:
            _revoke_issued_from(row)
            return None
        return row

    @hooked
    def create_token_response(self):
        client = self.request.client
        row = self.request.authorization_code
        code_id = row.id
        db = session()
        if not codes.claim_code(row, int(time.time())):
            # RFC 6749 §4.1.2: a code used twice is denied, and its tokens are revoked.
            db.rollback()
            _revoke_issued_from(codes.find_code_by_id(code_id))
            raise InvalidGrantError("The authorization code has already been used.")
        user = users.get(row.user_id)
        if user is None or not user.is_active:
            db.rollback()
            raise InvalidGrantError("The authorization code is no longer valid.")
        self.request.user = user
        issued = self.server.tokens.issue(
            client,
            user,
            row.scope,
            sign_in=SignIn(row.auth_time, row.sid, row.nonce),
            with_refresh=client.check_grant_type("refresh_token"),
        )
        codes.record_issued(row, issued.jti, issued.access_expires_at, issued.refresh_family)
        db.commit()
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]

    def authenticate_refresh_token(self, refresh_token):
        row = refresh_tokens.find_refresh_token(refresh_token)
        if row is None or row.revoked_at is not None or row.expires_at <= time.time():
            return None
        if row.used_at is not None:
            # Reuse of a rotated token means it leaked: revoke the whole family.
            refresh_tokens.revoke_family(row.family, int(time.time()))
            session().commit()
            return None
        return row

    def authenticate_user(self, refresh_token):
        user = users.get(refresh_token.user_id)
        return user if user is not None and user.is_active else None

    @hooked
    def create_token_response(self):
        client = self.request.client
        row = self.request.refresh_token
        family = row.family
        now = int(time.time())
        db = session()
        if not refresh_tokens.claim_refresh_token(row, now):
            db.rollback()
            refresh_tokens.revoke_family(family, now)
            db.commit()
            raise InvalidGrantError("The refresh token has already been used.")
        user = self.authenticate_user(row)
        if user is None:
            db.rollback()
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
    """Revoke what a code's first redemption issued (refresh family and access token)."""
    if row.refresh_family:
        refresh_tokens.revoke_family(row.refresh_family, int(time.time()))
        session().commit()
    if row.access_token_jti:
        # Two replays at once may both get here: the deny list takes the second quietly.
        access_tokens.deny_and_commit(row.access_token_jti, row.access_token_expires_at)
