"""OpenID Connect authorization request parameters (OIDC Core §3.1.2.1), checked as a grant
extension so that every error here is redirected to the client's validated redirect URI."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError

PROMPT_VALUES = ("none", "login", "consent", "select_account")
# Prompts that ask us to authenticate the user again, satisfied once they have signed in.
REAUTHENTICATE = {"login", "select_account"}
MAX_NONCE_LENGTH = 255


@dataclass(frozen=True)
class OpenIDRequest:
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    nonce: str | None

    def wants_new_login(self, auth_time: int | None, now: int) -> bool:
        """prompt=login|select_account, or an authentication older than max_age (§3.1.2.1;
        max_age=0 is equivalent to prompt=login)."""
        if self.prompt & REAUTHENTICATE or self.max_age == 0:
            return True
        return self.max_age is not None and (auth_time is None or now - auth_time > self.max_age)


class OpenIDRequestParameters:
    """Grant extension: parses and checks the OIDC parameters onto `request.oidc`."""

    def __call__(self, grant):
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant, redirect_uri):
        data = grant.request.payload.data
        # §6: we support neither request objects nor request URIs.
        if "request" in data:
            raise RequestNotSupportedError("Request objects are not supported.")
        if "request_uri" in data:
            raise RequestURINotSupportedError("request_uri is not supported.")
        if data.get("response_mode", "query") != "query":
            raise InvalidRequestError("Only response_mode=query is supported.")
        nonce = data.get("nonce")
        if nonce is not None and not 0 < len(nonce) <= MAX_NONCE_LENGTH:
            raise InvalidRequestError(f"'nonce' must be 1 to {MAX_NONCE_LENGTH} characters.")
        grant.request.oidc = OpenIDRequest(
            prompt=_prompt(data.get("prompt")),
            max_age=_max_age(data.get("max_age")),
            login_hint=data.get("login_hint"),
            nonce=nonce,
        )


def _prompt(value: str | None) -> frozenset[str]:
    prompt = frozenset((value or "").split())
    if not prompt <= set(PROMPT_VALUES):
        raise InvalidRequestError("'prompt' must be none, login, consent or select_account.")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values.")
    return prompt


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise InvalidRequestError("'max_age' must be a number of seconds.")
    return int(value)
