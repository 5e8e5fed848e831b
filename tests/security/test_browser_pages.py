"""RFC 9700 §4.2 (credential leakage via Referer), §4.3 (browser history), §4.7 (CSRF), §4.12
(307 redirects) and §4.16 (clickjacking): the pages a browser sees during sign-in and consent."""

from __future__ import annotations

import re

from ..conftest import PASSWORD, REDIRECT_URI, pkce_pair
from ..flows.stored_state import unchanged
from ..helpers import authorize_query, authorize_url, csrf_token, decide, login, redirect_params, signed_in_as
from .conftest import EMAIL

# Attributes that make a browser fetch or navigate somewhere on its own, or on a click.
FETCHING_ATTRIBUTE = re.compile(r'\b(?:src|href|action|srcset|poster|data)\s*=\s*"([^"]*)"', re.IGNORECASE)


def browser_pages(client, world) -> dict:
    """Every page of a sign-in and consent, by name, with the authorization response itself;
    the client ends signed in."""
    _, challenge = pkce_pair()
    url = authorize_url(authorize_query(world.client_id, challenge))
    pages = {"authorize (anonymous)": client.get(url), "login": client.get("/login?next=" + url)}
    page = pages["login"].get_data(as_text=True)
    pages["login failed"] = client.post("/login", data={"email": EMAIL, "password": "wrong password",
                                                        "csrf_token": csrf_token(page)})
    pages["login succeeded"] = login(client, EMAIL, next_url=url)
    pages["consent"] = client.get(url)
    pages["authorization response"] = decide(client, url, "allow")
    pages["error page"] = client.get(authorize_url(authorize_query("client_unknown", challenge)))
    pages["logout"] = client.get("/logout")
    return pages


def test_pages_cannot_be_framed(client, world):
    """RFC 9700 §4.16: the sign-in, consent, error and logout pages (and the redirects between them)
    forbid framing twice over: X-Frame-Options DENY and CSP frame-ancestors 'none'."""
    for name, response in browser_pages(client, world).items():
        assert response.headers.get("X-Frame-Options") == "DENY", name
        assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", ""), name


def test_no_referer_leaves_the_pages(client, world):
    """RFC 9700 §4.2.4: `Referrer-Policy: no-referrer` on every page of the flow and on the
    authorization response redirect (which holds the code), so neither the request parameters nor
    the code reach another site in a Referer header."""
    for name, response in browser_pages(client, world).items():
        assert response.headers.get("Referrer-Policy") == "no-referrer", name


def test_pages_of_the_flow_load_nothing_from_elsewhere(client, world):
    """RFC 9700 §4.2.2, §4.2.4: the pages of the flow load and link only this server's resources
    (every URL attribute is a path here or a fragment), and their CSP allows no other source: no third-party
    content could ever read a Referer or the page's URL."""
    for name, response in browser_pages(client, world).items():
        if response.status_code in (301, 302, 303):
            continue
        for url in FETCHING_ATTRIBUTE.findall(response.get_data(as_text=True)):
            same_page = url.startswith("#")
            assert same_page or (url.startswith("/") and not url.startswith("//")), (name, url)
        policy = response.headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:"):
            assert directive in policy, (name, policy)


def test_pages_and_the_code_redirect_are_not_stored(client, world):
    """RFC 9700 §4.3.1: `Cache-Control: no-store` on the pages and on the redirect carrying the
    code, so no cache keeps them (the code is single-use and short-lived besides)."""
    for name, response in browser_pages(client, world).items():
        assert "no-store" in response.headers.get("Cache-Control", ""), name


def test_credentials_are_posted_then_redirected_with_302_or_303(client, world):
    """RFC 9700 §4.12: after a POST of credentials (sign-in) or consent, the redirect is never a
    307, which would make the browser send the form (password included) on to the next site."""
    pages = browser_pages(client, world)
    for name in ("login succeeded", "authorization response"):
        assert pages[name].status_code in (302, 303), (name, pages[name].status_code)
    assert pages["authorization response"].headers["Location"].startswith(REDIRECT_URI + "?")


# -- §4.7 CSRF -----------------------------------------------------------------------------------

def test_consent_without_or_with_a_wrong_csrf_token_does_nothing(client, world, database_url):
    """RFC 9700 §4.7: a forged consent POST (no token, another session's token, garbage) issues no
    code and stores no consent; the real form still works afterwards."""
    login(client, EMAIL)
    _, challenge = pkce_pair()
    url = authorize_url(authorize_query(world.client_id, challenge))
    other_session = world_page_token(client.application, url)
    for token in (None, "", "garbage", other_session):
        data = {"decision": "allow"} if token is None else {"decision": "allow", "csrf_token": token}
        with unchanged(database_url):
            response = client.post(url, data=data)
        assert response.status_code == 400, token
        assert "Location" not in response.headers
    response = decide(client, url, "allow")
    assert response.status_code == 302 and "code" in redirect_params(response)


def world_page_token(app, url: str) -> str:
    """A valid CSRF token of another browser session (the attacker's own)."""
    attacker = app.test_client()
    return csrf_token(attacker.get("/login?next=" + url).get_data(as_text=True))


def test_state_is_echoed_unchanged(client, world):
    """RFC 9700 §4.7.1: the client's CSRF defence, `state`, comes back exactly as sent (odd
    characters included), on success and on error."""
    login(client, EMAIL)
    _, challenge = pkce_pair()
    state = "a/b?c=d&e+f %20 é~"
    allowed = decide(client, authorize_url(authorize_query(world.client_id, challenge, state=state)), "allow")
    refused = client.get(authorize_url(authorize_query(world.client_id, challenge, state=state, scope="nope")))
    assert redirect_params(allowed)["state"] == state
    assert redirect_params(refused)["state"] == state


def test_login_without_or_with_a_wrong_csrf_token_signs_nobody_in(client, world):
    """RFC 9700 §4.7 (login CSRF): a forged sign-in POST, with the right password, does not sign
    the browser in (else an attacker could sign a victim into the attacker's account)."""
    other_session = world_page_token(client.application, "/dashboard")
    for token in (None, "garbage", other_session):
        data = {"email": EMAIL, "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        response = client.post("/login", data=data)
        assert response.status_code in (400, 401), token
        assert signed_in_as(client) is None
    login(client, EMAIL)
    assert signed_in_as(client) == EMAIL


def test_logout_without_a_csrf_token_keeps_the_session(client, world):
    """RFC 9700 §4.7: a forged logout POST (no token) does not end the session."""
    login(client, EMAIL)
    assert client.post("/logout").status_code == 400
    assert client.post("/oauth/logout", data={"confirm": "yes"}).status_code == 400
    assert signed_in_as(client) == EMAIL
