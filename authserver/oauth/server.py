"""The authorization server: its feature set composed in one place, on Authlib's framework-free core."""

from __future__ import annotations

import json

from authlib.common.urls import add_params_to_uri
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidRequestError,
    OAuth2Request,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
)
from flask import Response
from flask import request as flask_request

from ..settings import Settings
from ..storage import clients
from .bearer import verify_access_token
from .grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant
from .introspection import IntrospectionEndpoint
from .oidc_request import OpenIDRequestParameters
from .pkce import RequiredS256CodeChallenge
from .requests import OAuthRequest, authorization_params
from .revocation import RevocationEndpoint
from .scopes import SCOPES
from .tokens import TokenIssuer

# For the errors Authlib raises without a description: every error body carries one (DESIGN.md, Errors).
DEFAULT_DESCRIPTIONS = {
    "invalid_request": "The request is not valid.",
    "invalid_grant": "The grant is invalid, expired, revoked, or was issued to another client.",
    "unauthorized_client": "The client may not use this grant type.",
    "unsupported_grant_type": "This grant_type is not supported.",
    "invalid_scope": "The requested scope is invalid, unknown, or malformed.",
}


class AuthServer(AuthorizationServer):
    def __init__(self, settings: Settings, tokens: TokenIssuer):
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.tokens = tokens
        # The grants we serve, in one list. PKCE and the OpenID Connect parameters are checked
        # on every authorization request.
        self.register_grant(AuthorizationCodeGrant, [RequiredS256CodeChallenge(), OpenIDRequestParameters()])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    # -- storage hook ----------------------------------------------------------

    def query_client(self, client_id):
        return clients.find_active(client_id)

    def verify_access_token(self, token: str) -> dict:
        """Claims of one of our valid access tokens, or InvalidAccessToken (fails closed)."""
        return verify_access_token(
            token, self.tokens.signer, issuer=self.settings.issuer, audience=self.settings.api_audience
        )

    # -- framework hooks -------------------------------------------------------

    def create_oauth2_request(self, request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return OAuthRequest(flask_request, authorization_params(flask_request))

    def handle_response(self, status_code, payload, headers):
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        return Response(payload, status=status_code, headers=headers)

    def send_signal(self, name, *args, **kwargs):
        """Authlib's signals are unused: nothing subscribes."""

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authlib decodes Basic credentials as strict UTF-8, and splits an Authorization header
        holding a space at its whitespace without checking there are two parts; it would answer
        other bytes, or a header such as "Basic " or " ", with a 500: such credentials
        authenticate no client (RFC 6749 §2.3.1)."""
        if _blank_after_split(request.headers.get("Authorization")):
            raise InvalidClientError()
        try:
            return super().authenticate_client(request, methods, endpoint)
        except UnicodeDecodeError:
            raise InvalidClientError() from None

    def handle_error_response(self, request, error):
        if not error.description:
            error.description = DEFAULT_DESCRIPTIONS.get(error.error, "The request was refused.")
        if error.error == "invalid_client":
            # Always 401 with a WWW-Authenticate challenge, whichever method the client tried,
            # and one description: it must not say whether the client exists.
            error.status_code = 401
            error.description = "Client authentication failed."
        status, body, headers = error(self.get_error_uri(request, error))
        if status == 302:
            headers = self.with_issuer(headers)
        else:
            headers = [*headers, *default_json_headers]
        return self.handle_response(status, body, _unique(headers))

    def with_issuer(self, headers):
        """RFC 9207: every authorization response names its issuer."""
        return [
            (name, add_params_to_uri(value, [("iss", self.settings.issuer)]) if name == "Location" else value)
            for name, value in headers
        ]

    def get_authorization_grant(self, request):
        if not request.payload.response_type:
            # RFC 6749 §4.1.2.1: a missing parameter is invalid_request, not an unsupported type.
            raise InvalidRequestError("Missing 'response_type'.", redirect_uri=self._validated_redirect_uri(request))
        if request.payload.response_type != "code":
            # Authlib's own error here echoes the parameter into a description it then rejects.
            raise UnsupportedResponseTypeError(
                None, "Only response_type=code is supported.", redirect_uri=self._validated_redirect_uri(request)
            )
        return super().get_authorization_grant(request)

    def get_token_grant(self, request):
        """RFC 6749 §5.2: a missing grant_type is invalid_request, not unsupported_grant_type."""
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            if not request.payload.grant_type:
                # Still this class: Authlib's create_token_response catches only it around this call.
                error.error, error.description = "invalid_request", "Missing 'grant_type'."
            raise

    def _validated_redirect_uri(self, request):
        """RFC 6749 §4.1.2.1: redirect an error only to a URI registered for a known client."""
        client = self.query_client(request.payload.client_id)
        uri = request.payload.redirect_uri
        if client is not None and uri and client.check_redirect_uri(uri):
            return uri
        return None


def _unique(headers):
    return list(dict(headers).items())


def _blank_after_split(authorization: str | None) -> bool:
    """An Authorization header with a space but not two whitespace-separated parts."""
    return authorization is not None and " " in authorization and len(authorization.split(None, 1)) < 2
