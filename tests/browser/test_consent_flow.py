"""The OAuth consent flow in a real browser (headless Chromium, Playwright) against the real server
(`authserver serve`, prepared only through the CLI), with a real client app listening on a
loopback port for the redirect.

The client app is a real HTTP server, not Playwright request interception: the browser then
follows the authorization response over the network exactly as it would to a client app, so a
Content-Security-Policy (e.g. `form-action`) or a redirect that stopped a browser from reaching the
client would fail here, and what arrived is seen from the client's side too.

Elements are found by role and accessible name ("Email", "Password", "Sign in", "Allow", "Deny"),
never by CSS class: the look of the pages may change, their words and roles are what users use.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
import requests

from ..e2e.conftest import e2e_database_url  # noqa: F401 (fixture: SQLite, or PostgreSQL when asked for)
from ..e2e.processes import Workspace, new_workspace, running_server
from ..e2e.test_browser_flow import pkce_pair, query_of, verify_access_token
from .conftest import assert_product_stylesheet, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CLIENT_NAME = "Browser Example App"
SCOPE = "openid profile email"
PASSWORD = "browser e2e correct horse battery staple"
HTTP_TIMEOUT = 10


@dataclass(frozen=True)
class Deployment:
    workspace: Workspace
    kid: str
    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, e2e_database_url, client_app) -> Deployment:  # noqa: F811
    workspace = new_workspace(tmp_path_factory, e2e_database_url, "browser")
    workspace.run("db", "upgrade")
    key = json.loads(workspace.run("keys", "generate"))
    client = json.loads(workspace.run(
        "clients", "create", "--name", CLIENT_NAME, "--redirect-uri", client_app.redirect_uri,
        "--grant-type", "authorization_code", "refresh_token", "--scope", SCOPE,
    ))
    return Deployment(workspace, key["kid"], client["client_id"], client["client_secret"], client_app.redirect_uri)


@pytest.fixture(scope="module")
def server(deployment):
    with running_server(deployment.workspace) as server:
        yield server


@pytest.fixture
def user(deployment) -> User:
    """An account of its own per test: consent given in one test must not skip it in another."""
    email = f"user-{secrets.token_hex(4)}@example.com"
    created = json.loads(deployment.workspace.run(
        "users", "create", "--email", email, "--name", "Ada Lovelace", "--password-stdin", stdin=PASSWORD + "\n",
    ))
    return User(created["id"], email, "Ada Lovelace")


def path_is(path: str):
    return lambda url: urlsplit(url).path == path


def authorize_url(server, deployment: Deployment, *, state: str, nonce: str, challenge: str) -> str:
    return server.url("/oauth/authorize?" + urlencode({
        "response_type": "code",
        "client_id": deployment.client_id,
        "redirect_uri": deployment.redirect_uri,
        "scope": SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }))


def sign_in_to_consent(page, page_events, url: str, user: User, *, shots: bool = False) -> None:
    """Open the authorization request in the browser, sign in on the login page it leads to, and
    stop on the consent page."""
    page.goto(url)
    page.wait_for_url(path_is("/login"))
    assert page.get_by_role("heading", level=1).inner_text().strip()
    assert_product_stylesheet(page, page_events)
    if shots:
        screenshot(page, "login")

    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile(r"sign in", re.IGNORECASE)).click()

    page.wait_for_url(path_is("/oauth/authorize"))
    # RFC 6749 §10.2: the user must see which client asks.
    assert CLIENT_NAME in page.get_by_role("heading", level=1).inner_text()
    assert_product_stylesheet(page, page_events)
    if shots:
        screenshot(page, "consent")


def decide(page, deployment: Deployment, button: str) -> dict:
    """Press Allow or Deny; the browser must land on the client's redirect URI. Its query."""
    page.get_by_role("button", name=re.compile(rf"^\s*{button}\s*$", re.IGNORECASE)).click()
    page.wait_for_url(lambda url: url.startswith(deployment.redirect_uri + "?"))
    return query_of(page.url)


def test_sign_in_consent_and_code_exchange(page, page_events, server, deployment, user, client_app):
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)

    sign_in_to_consent(page, page_events, authorize_url(server, deployment, state=state, nonce=nonce,
                                                        challenge=challenge), user, shots=True)
    params = decide(page, deployment, "Allow")
    screenshot(page, "callback")

    # The authorization response (RFC 6749 §4.1.2, RFC 9207 §2), as the client app received it.
    assert "error" not in params, params
    assert params["state"] == state
    assert params["iss"] == deployment.workspace.issuer
    assert params["code"]
    assert client_app.callbacks[-1].query == params

    # The client app redeems the code with its PKCE verifier (RFC 7636 §4.5).
    exchanged = requests.post(
        server.url("/oauth/token"),
        auth=(deployment.client_id, deployment.client_secret),
        data={"grant_type": "authorization_code", "code": params["code"],
              "redirect_uri": deployment.redirect_uri, "code_verifier": verifier},
        timeout=HTTP_TIMEOUT,
    )
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"]

    claims = verify_access_token(tokens["access_token"], server.url("/.well-known/jwks.json"), deployment.workspace.issuer)
    assert claims["sub"] == user.id
    assert claims["client_id"] == deployment.client_id
    assert set(SCOPE.split()) <= set(claims["scope"])

    # The ID token is for this client and carries the nonce of this request (OIDC Core §3.1.3.7).
    signing_key = jwt.PyJWKClient(server.url("/.well-known/jwks.json"), cache_jwk_set=False)
    id_token = jwt.decode(
        tokens["id_token"], signing_key.get_signing_key_from_jwt(tokens["id_token"]).key,
        algorithms=["RS256"], audience=deployment.client_id, issuer=deployment.workspace.issuer,
        options={"require": ["iss", "aud", "sub", "exp", "iat", "nonce"]},
    )
    assert id_token["nonce"] == nonce
    assert id_token["sub"] == user.id
    assert (id_token["email"], id_token["name"]) == (user.email, user.name)

    assert page_events.problems() == []
    assert "Traceback" not in server.stderr(), server.stderr()


def test_denying_consent_returns_access_denied(page, page_events, server, deployment, user, client_app):
    _, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)

    sign_in_to_consent(page, page_events, authorize_url(server, deployment, state=state, nonce="n-" + state,
                                                        challenge=challenge), user)
    params = decide(page, deployment, "Deny")
    screenshot(page, "denied")

    # RFC 6749 §4.1.2.1: the error goes to the client, with its state, and no code.
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert params["iss"] == deployment.workspace.issuer  # RFC 9207 §2: error responses too
    assert "code" not in params
    assert client_app.callbacks[-1].query == params

    assert page_events.problems() == []
    assert "Traceback" not in server.stderr(), server.stderr()


def test_csp_violations_are_caught(page, page_events, server):
    """The checks above would pass vacuously if violations went unnoticed: an inline script, which
    the server's Content-Security-Policy forbids, must be blocked by the browser and reported."""
    page.goto(server.url("/login"))
    assert page_events.problems() == []
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.inlineScriptRan = true";
        document.body.appendChild(script);
    }""")
    for _ in range(100):  # up to 5 s for the violation event to reach the test
        if page_events.csp_violations:
            break
        page.wait_for_timeout(50)
    assert page.evaluate("() => window.inlineScriptRan === true") is False
    assert any("script-src" in violation for violation in page_events.csp_violations), page_events.csp_violations
    assert any("Content Security Policy" in text for text in page_events.console_errors), page_events.console_errors
