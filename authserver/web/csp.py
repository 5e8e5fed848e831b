"""The Content-Security-Policy of every response: scripts, styles, images and everything else
only from this server (no inline script or style), no plugins, no <base>, no framing, and forms
that may only be sent here.

`form-action` is the one directive a page may widen, for a reason: Chromium and Safari check it
against every redirect a form submission leads to, not only the form's own target (Firefox does
not; w3c/webappsec-csp#8). Three forms post here and are then redirected to a client:

- the consent form → the client's redirect URI (with the code, or access_denied);
- the RP-logout confirmation → the client's post-logout redirect URI;
- the sign-in and sign-up forms of an authorization request → /oauth/authorize, which redirects
  straight on to the client's redirect URI when consent is already remembered.

Those pages add the origin of that one URI, already matched exactly against the client's
registration, beside 'self' (a private-use scheme such as com.example.app: is added as a scheme).
Every other page allows only 'self'.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from flask import g, url_for

from ..storage import clients

POLICY = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("object-src", "'none'"),
    ("base-uri", "'none'"),
    ("frame-ancestors", "'none'"),
)

# Only sources that cannot break out of the directive: a registered URI is data, not policy.
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_HOST_AND_PORT = re.compile(r"(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def _policy(form_action: str) -> str:
    return "; ".join(f"{name} {value}" for name, value in (*POLICY, ("form-action", form_action)))


# The policy of every response but the few pages that widen form-action: built once, not per response.
DEFAULT_POLICY = _policy("'self'")


def content_security_policy() -> str:
    sources = g.get("form_redirect_sources")
    return _policy(" ".join(["'self'", *sources])) if sources else DEFAULT_POLICY


def allow_form_redirect_to(uri: str) -> None:
    """Let this page's forms end in a redirect to `uri`, a URI registered for a client."""
    source = _source(uri)
    if source is not None:
        g.setdefault("form_redirect_sources", []).append(source)


def allow_form_redirect_after_sign_in(next_url: str) -> None:
    """For a sign-in or sign-up page whose `next` is an authorization request: its redirect URI,
    if it is registered for the client it names (else nothing: that request will fail anyway)."""
    parts = urlsplit(next_url)
    if parts.path != url_for("oauth.authorize"):
        return
    query = parse_qs(parts.query)
    client_ids, redirect_uris = query.get("client_id", []), query.get("redirect_uri", [])
    if len(client_ids) != 1 or len(redirect_uris) != 1:
        return
    client = clients.find_active(client_ids[0])
    if client is not None and client.check_redirect_uri(redirect_uris[0]):
        allow_form_redirect_to(redirect_uris[0])


def _source(uri: str) -> str | None:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        return None
    if scheme not in ("http", "https"):
        # A native app's private-use scheme (RFC 8252 §7.1), reverse-DNS as registration requires:
        # never javascript:, data: or the like.
        return f"{scheme}:" if "." in scheme else None
    host_and_port = parts.netloc.rpartition("@")[2].lower()
    if not _HOST_AND_PORT.fullmatch(host_and_port):
        return None
    return f"{scheme}://{host_and_port}"
