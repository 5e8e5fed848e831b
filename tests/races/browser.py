"""A signed-in user's consent, by hand over HTTP: an authorization code not yet redeemed."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import requests

from ..e2e.by_hand import pkce_pair, query_of, redirect_location, the_form
from .conftest import EMAIL, PASSWORD, REDIRECT_URI

SCOPE = "openid read:users"


def authorization_code(server, client_id: str, scope: str = SCOPE) -> dict:
    """Sign in, allow (unless allowed before): the parameters of a token request that redeems the code (with PKCE)."""
    verifier, challenge = pkce_pair()
    authorize_url = server.url("/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
        "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256",
    }))
    with requests.Session() as browser:
        login_form = the_form(browser.get(authorize_url, timeout=10))  # redirected to /login
        browser.post(login_form.action, data={**login_form.hidden, "email": EMAIL, "password": PASSWORD},
                     allow_redirects=False, timeout=10)
        answer = browser.get(authorize_url, allow_redirects=False, timeout=10)
        if answer.status_code == 200:  # the consent page; once allowed, the consent is remembered
            consent_form = the_form(answer)
            answer = browser.post(consent_form.action, data={**consent_form.hidden, "decision": "allow"},
                                  allow_redirects=False, timeout=10)
        code = query_of(redirect_location(answer))["code"]
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}


def tokens(server, client: tuple[str, str], scope: str = SCOPE) -> dict:
    """A fresh token response (access, refresh and ID token) for the user."""
    response = requests.post(server.url("/oauth/token"), data=authorization_code(server, client[0], scope),
                             auth=client, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()
