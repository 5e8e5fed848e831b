"""Turns an HTTP request into OAuth parameters: query for /authorize, form or JSON body for the
token endpoint, with the checks RFC 6749 asks of every request before any grant logic runs."""

from __future__ import annotations

import json

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Payload, OAuth2Request
from flask import Request
from werkzeug.datastructures import MultiDict

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# Names we may echo in an error description; anything else is described generically.
KNOWN_PARAMETERS = {
    "grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier",
    "refresh_token", "scope", "response_type", "state", "code_challenge",
    "code_challenge_method", "nonce", "prompt", "max_age", "token", "token_type_hint",
}


class ParamsPayload(OAuth2Payload):
    def __init__(self, params: MultiDict):
        self._params = params

    @property
    def data(self):
        return self._params

    @property
    def datalist(self):
        return {key: self._params.getlist(key) for key in self._params}


class OAuthRequest(OAuth2Request):
    """An OAuth2Request over exactly the parameters we parsed (Authlib's Flask request would mix
    query and body together)."""

    def __init__(self, request: Request, params: MultiDict):
        super().__init__(request.method, request.url, headers=request.headers)
        self._params = params
        self.payload = ParamsPayload(params)

    @property
    def args(self):
        return self._params

    @property
    def form(self):
        return self._params


def authorization_params(request: Request) -> MultiDict:
    return _single_valued(request.args)


def token_params(request: Request) -> MultiDict:
    """The token request's body: form-encoded (RFC 6749) or a flat JSON object of strings."""
    mimetype = request.mimetype
    if mimetype == FORM:
        params = request.form
    elif mimetype == JSON:
        params = _json_params(request)
    else:
        raise InvalidRequestError("The body must be application/x-www-form-urlencoded or application/json.")
    params = _single_valued(params)
    # RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    if "client_secret" in params and request.authorization is not None:
        raise InvalidRequestError("Use one client authentication method, not several.")
    return params


def _json_params(request: Request) -> MultiDict:
    try:
        data = json.loads(request.get_data(), object_pairs_hook=_unique_keys)
    except _RepeatedKey as repeated:
        raise InvalidRequestError(f"The request repeats {_describe_parameter(str(repeated))}.") from None
    except (ValueError, RecursionError):  # deep nesting raises RecursionError, not a ValueError
        raise InvalidRequestError("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The body is not a JSON object.")
    if not all(isinstance(value, str) for value in data.values()):
        raise InvalidRequestError("Every parameter in the JSON body must be a string.")
    if not all(_is_unicode(key) and _is_unicode(value) for key, value in data.items()):
        raise InvalidRequestError("The JSON body holds a string that is not valid Unicode.")
    return MultiDict(data)


def _is_unicode(value: str) -> bool:
    """JSON may escape a lone surrogate ("\\ud800"), which no digest or database can encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    """RFC 6749 §3.2: no parameter twice, in JSON too (where a parser would silently keep one)."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)
    return dict(pairs)


def _single_valued(params: MultiDict) -> MultiDict:
    # RFC 6749 §3.1 and §3.2: parameters MUST NOT be included more than once.
    for key in params:
        if len(params.getlist(key)) > 1:
            raise InvalidRequestError(f"The request repeats {_describe_parameter(key)}.")
    return params


def _describe_parameter(key: str) -> str:
    return f"'{key}'" if key in KNOWN_PARAMETERS else "a parameter"
