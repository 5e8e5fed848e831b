"""The errors a resource service answers with: one class per wire error, each carrying the
product's code, its public message and its HTTP status (DESIGN.md, Errors).

The message is the public text that goes on the wire; why a token was refused (which check
failed) is private detail, kept in `detail` for the log and never sent to the client.
"""

from __future__ import annotations


class AuthError(Exception):
    """A request's credentials were refused; rendered as `{"error": {"code", "message", "status"}}`."""

    code: str = "INVALID_TOKEN"
    message: str = "The provided authentication token is invalid"
    status: int = 401

    def __init__(self, detail: str = ""):
        super().__init__(detail or self.message)
        self.detail = detail

    def envelope(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


class InvalidToken(AuthError):
    """Anything not provably valid: malformed, forged, foreign, not yet valid, or the keys are unavailable."""


class TokenExpired(InvalidToken):
    """Past its `exp` (beyond the leeway) and otherwise valid. A subclass of InvalidToken, so that
    `except InvalidToken` refuses both."""

    code = "TOKEN_EXPIRED"
    message = "The provided authentication token has expired"


class InsufficientScope(AuthError):
    """A valid token without every scope the endpoint requires (RFC 6750 §3.1: 403)."""

    code = "INSUFFICIENT_SCOPE"
    message = "The provided authentication token does not grant the required scope"
    status = 403

    def __init__(self, required: tuple[str, ...], detail: str = ""):
        super().__init__(detail)
        self.required = tuple(required)


class InvalidAPIKey(AuthError):
    """An API key that is not provably valid: mistyped (shape or checksum), unknown, revoked or
    expired, or a key sent to a service that accepts none."""

    code = "INVALID_API_KEY"
    message = "The provided API key is invalid"


class ServiceUnavailable(AuthError):
    """The credential could not be checked because the authorization server did not answer
    usefully (unreachable, 5xx, garbage). 503, not 401: the credential may be good, and a client
    told 401 would drop it."""

    code = "SERVICE_UNAVAILABLE"
    message = "The credential could not be checked right now; try again shortly"
    status = 503
