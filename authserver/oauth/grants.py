"""The three grants we serve, on Authlib's grant classes.

Each `create_token_response` mints the tokens, then *claims* the credential it redeems with one
conditional UPDATE (for a code, recording what it issued) in the same transaction, and commits
both together: of concurrent redemptions, one wins and the others' UPDATE matches nothing (their
tokens are rolled back, never sent). A code's replay can always find (and revoke) what the winner
issued; a refresh token's, within the grace window, gets the winner's response (RefreshTokenGrant).
"""

from __future__ import annotations

import secrets
import time

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.util import scope_to_list

from .. import audit
from ..storage import access_tokens, codes, refresh_tokens
from ..storage.db import session
from . import successor
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
            self._revoke_issued_from(row, client)
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
            self._revoke_issued_from(codes.find_by_id(code_id), client)
            raise InvalidGrantError("The authorization code has already been used.")
        db.commit()
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER

    def _revoke_issued_from(self, row, client) -> None:
        """Revoke what a code's first redemption issued (refresh family and access token), commit,
        and record the reuse."""
        if row.refresh_family:
            refresh_tokens.revoke_family(row.refresh_family, int(time.time()))
        if row.access_token_jti:
            # Two replays at once may both get here: the deny list takes the second quietly.
            access_tokens.deny(row.access_token_jti, row.access_token_expires_at)
        session().commit()
        audit.record("authorization_code_reuse_detected", account=self.code_user.public_id,
                     client=client.client_id, family=row.refresh_family)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation with a grace window (AUTHSERVER_REFRESH_GRACE_SECONDS): the claim that marks the
    token used also keeps the response it got, sealed under the token (oauth/successor.py). The
    same token presented again by the same client within the window, while its family stands (a
    retry after a lost response, or concurrent requests that lost the claim), gets that response
    again: the same pair, issued once. Any other reuse of a rotated token means it leaked: the
    whole family is revoked. With a grace of 0 every reuse is."""

    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]
    token_user = None  # the token's user, loaded with the token by authenticate_refresh_token
    presented = None  # the refresh token as presented: the key to its sealed successor
    replayed = None  # the response of the token's rotation, when this request is a retry within the window

    def authenticate_refresh_token(self, refresh_token):
        found = refresh_tokens.find_with_user(refresh_token)
        if found is None:
            return None
        row, self.token_user = found
        self.presented = refresh_token
        if row.revoked_at is not None or row.expires_at <= time.time():
            return None
        if row.used_at is not None:
            self.replayed = self._retried_response(row)
            if self.replayed is None:
                self._revoke_reused(row.family, int(time.time()))
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
        if self.replayed is not None:
            return 200, self.replayed, self.TOKEN_RESPONSE_HEADER
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
        token_id, family, now = row.id, row.family, int(time.time())  # a rollback expires the rows loaded
        sealed = None
        if self.server.settings.refresh_grace_seconds:
            sealed = successor.seal(self.presented, _binding(token_id, family), issued.response)
        if not refresh_tokens.claim(token_id, now, sealed):
            # A concurrent rotation with the same token won (or the family was revoked): drop these
            # tokens, and answer as a retry of the winner would be answered.
            db.rollback()
            return self._lost_claim(token_id)
        db.commit()
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER

    def _lost_claim(self, token_id: int):
        row = refresh_tokens.find_by_id(token_id)  # as the winner committed it
        if row is None or row.revoked_at is not None or row.used_at is None:
            raise InvalidGrantError("The refresh token is no longer valid.")
        response = self._retried_response(row)
        if response is None:
            self._revoke_reused(row.family, int(time.time()))
            raise InvalidGrantError("The refresh token has already been used.")
        return 200, response, self.TOKEN_RESPONSE_HEADER

    def _retried_response(self, row) -> dict | None:
        """The response the used token's rotation returned, if presenting it again is a retry: by
        the same client, within the grace window, while the successor it got is still unused (a
        client that used the successor received it: the old token is then in other hands)."""
        grace = self.server.settings.refresh_grace_seconds
        if not grace or time.time() - row.used_at > grace or not row.check_client(self.request.client):
            return None
        response = successor.unseal(self.presented, _binding(row.id, row.family), row.successor)
        if response is None:
            return None
        issued = refresh_tokens.find_refresh_token(response["refresh_token"])
        return response if issued is not None and issued.used_at is None else None

    def _revoke_reused(self, family: str, now: int) -> None:
        """Reuse of a rotated token means it leaked: revoke the whole family, and record it."""
        refresh_tokens.revoke_family(family, now)
        session().commit()
        audit.record("refresh_token_reuse_detected", account=self.token_user.public_id,
                     client=self.request.client.client_id, family=family)


def _binding(token_id: int, family: str) -> str:
    """What a sealed successor is bound to: its row, so it opens nowhere else."""
    return f"refresh_tokens/{token_id}/{family}"


class ClientCredentialsGrant(ClientScopeCheck, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    @hooked
    def create_token_response(self):
        client = self.request.client
        scope = client.get_allowed_scope(self.request.payload.scope)
        issued = self.server.tokens.issue(client, None, scope)
        return 200, issued.response, self.TOKEN_RESPONSE_HEADER

