"""PKCE (RFC 7636), stricter than Authlib's default: S256 only, and required for every client
unless a confidential client is registered with PKCE relaxed (RFC 9700 §2.1.1).

Authlib's `CodeChallenge(required=True)` alone enforces PKCE for public clients only."""

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge


class RequiredS256CodeChallenge(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    # RFC 7636 §4.3: an omitted method means "plain", which we refuse.
    DEFAULT_CODE_CHALLENGE_METHOD = "plain"

    def __init__(self):
        super().__init__(required=True)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        client = grant.request.client
        if not data.get("code_challenge") and client.require_pkce:
            raise InvalidRequestError("PKCE is required: send 'code_challenge' with 'code_challenge_method=S256'.")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
        super().validate_code_challenge(grant, redirect_uri)
