"""HTTPS behaviour (HSTS, Secure session cookie), forwarded headers behind trusted proxies, the
security headers of every response and the Content-Security-Policy's form-action exceptions;
in-process with the Flask test client."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import request

from ..conftest import PASSWORD, REDIRECT_URI, pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, login, signed_in_as

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

HTTPS_ISSUER = "https://auth.example.com"
HSTS = "max-age=63072000; includeSubDomains"


@pytest.fixture
def extra_settings() -> dict:
    """Settings a test changes; tests parametrize this fixture."""
    return {}


@pytest.fixture
def settings_overrides(settings_overrides, extra_settings):
    return {**settings_overrides, **extra_settings}


def cookie_attributes(response) -> dict[str, dict]:
    """The attributes of every cookie the response sets, by cookie name."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            cookies[name] = {
                "secure": bool(morsel["secure"]),
                "httponly": bool(morsel["httponly"]),
                "samesite": morsel["samesite"],
                "path": morsel["path"],
                "domain": morsel["domain"],
            }
    return cookies


# -- HTTPS issuer ------------------------------------------------------------------

https_only = pytest.mark.parametrize("extra_settings", [{"issuer": HTTPS_ISSUER}], ids=["https-issuer"])


@https_only
@pytest.mark.parametrize("path", ["/login", "/healthz", "/.well-known/jwks.json", "/no-such-page"])
def test_https_issuer_sends_hsts_on_every_response(client, path):
    response = client.get(path)
    assert response.headers.getlist("Strict-Transport-Security") == [HSTS]


@https_only
def test_https_login_sets_a_secure_host_prefixed_session_cookie(client, make_user):
    user = make_user(email="ada@example.com")
    # Like a browser told "Referrer-Policy: no-referrer", login() sends no Referer header.
    response = login(client, user.email)
    assert response.request.scheme == "https"  # the test client follows PREFERRED_URL_SCHEME
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/dashboard"

    assert cookie_attributes(response) == {
        "__Host-session": {
            "secure": True,
            "httponly": True,
            "samesite": "Lax",
            "path": "/",  # a __Host- cookie must have Path=/ and no Domain
            "domain": "",
        }
    }
    assert signed_in_as(client) == "ada@example.com"


@https_only
def test_https_sign_up_sets_the_same_secure_session_cookie(client):
    page = client.get("/signup")
    password = "plum tractor velvet 1987"
    response = client.post("/signup", data={"email": "grace@example.com", "name": "Grace", "password": password,
                                            "confirm": password, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert cookie_attributes(response) == {
        "__Host-session": {"secure": True, "httponly": True, "samesite": "Lax", "path": "/", "domain": ""}
    }


@https_only
def test_https_login_still_requires_the_csrf_token(client, make_user):
    user = make_user(email="ada@example.com")
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert cookie_attributes(response) == {}
    assert signed_in_as(client) is None


# -- default loopback http issuer -----------------------------------------------------

@pytest.mark.parametrize("path", ["/login", "/healthz", "/.well-known/jwks.json", "/no-such-page"])
def test_http_loopback_issuer_sends_no_hsts(client, path):
    assert "Strict-Transport-Security" not in client.get(path).headers


def test_http_loopback_login_cookie_is_httponly_lax_but_not_secure(client, make_user):
    user = make_user(email="ada@example.com")
    response = login(client, user.email)
    assert response.status_code == 302
    assert cookie_attributes(response) == {
        "session": {"secure": False, "httponly": True, "samesite": "Lax", "path": "/", "domain": ""}
    }


# -- forwarded headers -------------------------------------------------------------

def add_echo_route(app):
    """A test-only route on this app instance, showing what the server believes about the request."""

    @app.get("/_test/request")
    def echo_request():
        return {"scheme": request.scheme, "is_secure": request.is_secure,
                "remote_addr": request.remote_addr, "url": request.url}


FORWARDED = [
    pytest.param({"trusted_proxies": 0}, {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
                 {"scheme": "http", "is_secure": False, "remote_addr": "127.0.0.1",
                  "url": "http://localhost/_test/request"},
                 id="0-proxies-ignores-forwarded-headers"),
    pytest.param({"trusted_proxies": 1}, {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
                 {"scheme": "https", "is_secure": True, "remote_addr": "203.0.113.7",
                  "url": "https://localhost/_test/request"},
                 id="1-proxy-honours-forwarded-headers"),
    pytest.param({"trusted_proxies": 1},
                 {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.66, 203.0.113.7"},
                 {"scheme": "https", "is_secure": True, "remote_addr": "203.0.113.7",
                  "url": "https://localhost/_test/request"},
                 id="1-proxy-ignores-a-client-supplied-earlier-hop"),
    pytest.param({"trusted_proxies": 1}, {},
                 {"scheme": "http", "is_secure": False, "remote_addr": "127.0.0.1",
                  "url": "http://localhost/_test/request"},
                 id="1-proxy-without-forwarded-headers"),
]


@pytest.mark.parametrize(("extra_settings", "headers", "seen"), FORWARDED)
def test_forwarded_headers_are_honoured_only_from_trusted_proxies(app, client, headers, seen):
    add_echo_route(app)
    response = client.get("/_test/request", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == seen


# -- security headers --------------------------------------------------------------

def csp_directives(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(";"):
        name, _, rest = part.strip().partition(" ")
        directives[name] = rest.strip()
    return directives


@pytest.mark.parametrize("path", ["/login", "/signup", "/logout", "/no-such-page"])
def test_page_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == CSP


def test_dashboard_security_headers(client, make_user):
    login(client, make_user().email)
    response = client.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_pages_load_assets_only_from_this_server(client, path):
    html = client.get(path).get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert "/static/style.css" in assets and "/static/app.js" in assets
    assert all(url.startswith(("/", "#")) and not url.startswith("//") for url in assets), assets


@pytest.mark.parametrize("name", ["style.css", "app.js", "favicon.svg"])
def test_static_assets_are_served_with_their_type(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    expected = {"style.css": "text/css", "app.js": "text/javascript", "favicon.svg": "image/svg+xml"}[name]
    assert response.mimetype == expected


INLINE_CODE = [
    ("inline script", re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)),
    ("event handler attribute", re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)),
    ("style attribute", re.compile(r"<[^>]+\sstyle\s*=", re.I)),
    ("style element", re.compile(r"<style\b", re.I)),
    ("javascript: URL", re.compile(r"javascript:", re.I)),
]


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")))
def test_templates_hold_no_inline_script_or_style(template):
    """The CSP would block them: they must not be relied on."""
    text = (TEMPLATES / template).read_text()
    found = [what for what, pattern in INLINE_CODE if pattern.search(text)]
    assert not found, f"{template}: {found}"


# -- form-action: forms that end in a redirect to a client ----------------------------

def form_action(response) -> str:
    return csp_directives(response.headers["Content-Security-Policy"])["form-action"]


def test_the_consent_page_may_send_its_form_on_to_the_redirect_uri(client, make_user, make_client):
    login(client, make_user().email)
    row, _ = make_client()
    _, challenge = pkce_pair()
    page = client.get(authorize_url(authorize_query(row.client_id, challenge)))
    assert page.status_code == 200 and 'name="decision"' in page.get_data(as_text=True)
    assert form_action(page) == "'self' https://app.example.com"


@pytest.mark.parametrize(("redirect_uri", "source"), [
    ("http://127.0.0.1:8765/callback", "http://127.0.0.1:8765"),
    ("com.example.app:/oauth/callback", "com.example.app:"),
    ("https://App.Example.com:8443/cb?x=1", "https://app.example.com:8443"),
], ids=["loopback-port", "private-use-scheme", "port-and-case"])
def test_the_consent_page_names_the_redirect_uris_origin(client, make_user, make_client, redirect_uri, source):
    login(client, make_user().email)
    row, _ = make_client(redirect_uris=[redirect_uri])
    _, challenge = pkce_pair()
    page = client.get(authorize_url(authorize_query(row.client_id, challenge, redirect_uri=redirect_uri)))
    assert page.status_code == 200
    assert form_action(page) == f"'self' {source}"


@pytest.mark.parametrize("redirect_uri", [
    "https://app.example.com;script-src https://evil.example/cb",
    "https://app.example.com,evil.example/cb",
    "https://app.example.com 'unsafe-inline'/cb",
    "javascript:alert(1)//",
])
def test_a_registered_uri_never_becomes_policy(client, make_user, make_client, redirect_uri):
    """Storage takes any string (registration checks come before it): the policy must not."""
    login(client, make_user().email)
    row, _ = make_client(redirect_uris=[redirect_uri])
    _, challenge = pkce_pair()
    page = client.get(authorize_url(authorize_query(row.client_id, challenge, redirect_uri=redirect_uri)))
    assert page.status_code == 200, page.get_data(as_text=True)
    assert form_action(page) == "'self'"
    assert page.headers["Content-Security-Policy"] == CSP


def test_the_sign_in_page_of_an_authorization_request_may_end_at_its_redirect_uri(client, make_client):
    """Signing in redirects to /oauth/authorize, which goes straight on to the client when
    consent is remembered: Chromium checks form-action against that whole chain."""
    row, _ = make_client()
    _, challenge = pkce_pair()
    next_url = authorize_url(authorize_query(row.client_id, challenge))
    for path in ("/login", "/signup"):
        page = client.get(f"{path}?{urlencode({'next': next_url})}")
        assert form_action(page) == "'self' https://app.example.com", path


@pytest.mark.parametrize("redirect_uri", ["https://evil.example/callback", REDIRECT_URI + "/"])
def test_the_sign_in_page_names_no_unregistered_redirect_uri(client, make_client, redirect_uri):
    row, _ = make_client()
    _, challenge = pkce_pair()
    next_url = authorize_url(authorize_query(row.client_id, challenge, redirect_uri=redirect_uri))
    assert form_action(client.get(f"/login?{urlencode({'next': next_url})}")) == "'self'"


def test_the_logout_confirmation_may_end_at_the_post_logout_uri(client, make_user, make_client):
    login(client, make_user().email)
    row, _ = make_client(post_logout_redirect_uris=["https://rp.example.org/signed-out"])
    query = urlencode({"client_id": row.client_id, "post_logout_redirect_uri": "https://rp.example.org/signed-out"})
    page = client.get(f"/oauth/logout?{query}")
    assert page.status_code == 200 and 'name="confirm"' in page.get_data(as_text=True)
    assert form_action(page) == "'self' https://rp.example.org"


@pytest.mark.parametrize("path", ["/healthz", "/.well-known/jwks.json", "/.well-known/openid-configuration",
                                  "/no-such-page", "/oauth/token"])
def test_security_headers_are_on_every_response(client, path):
    response = client.post(path) if path == "/oauth/token" else client.get(path)
    # Each once: a response's own Cache-Control (the JWKS's, the token endpoint's) is kept, not doubled.
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    assert response.headers.getlist("Content-Security-Policy") == [CSP]
    assert len(response.headers.getlist("Cache-Control")) == 1
