"""The one way the resource side talks to the authorization server: a JSON request over
urllib (standard library: no dependency for the verifier), redirects refused, answers bounded."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message


class HTTPFailure(Exception):
    """No usable answer: network error, non-200 status, oversized or non-JSON body (the message
    says which, and names the method and URL, never the body sent)."""


class NoRedirects(urllib.request.HTTPRedirectHandler):
    # The discovery document, the key set and the introspection endpoint are used where the issuer
    # says they are: a redirect is an error, not something to follow to another host or to http.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def new_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(NoRedirects)


def fetch_json(opener: urllib.request.OpenerDirector, request: urllib.request.Request, *, timeout: float,
               max_bytes: int) -> tuple[object, Message]:
    """The parsed JSON body of a 200 answer to `request`, and the answer's headers."""
    what = f"{request.get_method()} {request.full_url}"
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise HTTPFailure(f"{what} answered {response.status}")
            body = response.read(max_bytes + 1)
            headers = response.headers
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HTTPFailure(f"{what} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HTTPFailure(f"{what} failed: {exc}") from None
    if len(body) > max_bytes:
        raise HTTPFailure(f"{what} answered more than {max_bytes} bytes")
    try:
        return json.loads(body), headers
    except ValueError:
        raise HTTPFailure(f"{what} did not answer JSON") from None
