"""HTTPS behaviour (HSTS, Secure session cookie), forwarded headers behind trusted proxies, and the
security headers of every response; in-process with the Flask test client."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from flask import request

from ..conftest import PASSWORD
from ..helpers import login

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
    assert response.headers["Strict-Transport-Security"] == HSTS


@https_only
def test_https_login_sets_a_secure_host_prefixed_session_cookie(client, make_user):
    user = make_user(email="ada@example.com")
    # Like a browser told "Referrer-Policy: no-referrer", login() sends no Referer header.
    response = login(client, user.email)
    assert response.request.scheme == "https"  # the test client follows PREFERRED_URL_SCHEME
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/"

    assert cookie_attributes(response) == {
        "__Host-session": {
            "secure": True,
            "httponly": True,
            "samesite": "Lax",
            "path": "/",  # a __Host- cookie must have Path=/ and no Domain
            "domain": "",
        }
    }
    assert "Signed in as ada@example.com" in client.get("/").get_data(as_text=True)


@https_only
def test_https_login_still_requires_the_csrf_token(client, make_user):
    user = make_user(email="ada@example.com")
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert cookie_attributes(response) == {}
    assert "Signed in as" not in client.get("/").get_data(as_text=True)


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


def test_login_page_security_headers(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert csp_directives(response.headers["Content-Security-Policy"]) == {
        "default-src": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "object-src": "'none'",
    }


@pytest.mark.parametrize("path", ["/healthz", "/.well-known/jwks.json", "/no-such-page", "/oauth/token"])
def test_security_headers_are_on_every_response(client, path):
    response = client.post(path) if path == "/oauth/token" else client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
