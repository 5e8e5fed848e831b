"""The whole product over real HTTP: a browser signs in and consents, a client app redeems the
code with PKCE, verifies the access token against the published JWKS on its own (PyJWT, no
server code), rotates its refresh token (a retry gets the same pair), and replays are refused."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
import requests

from .by_hand import pkce_pair, query_of, redirect_location, same_url, the_form
from .conftest import API_AUDIENCE, CLIENT_NAME, EMAIL, NAME, PASSWORD, REDIRECT_URI, SCOPE
from .processes import HOST, authserver_env, free_port, run_cli

pytestmark = pytest.mark.e2e


# -- a client app, by hand --------------------------------------------------------

def token_request(client_app: requests.Session, server, **params) -> requests.Response:
    """POST /oauth/token, form-encoded, as the session's client (client_secret_basic)."""
    return client_app.post(server.url("/oauth/token"), data=params, allow_redirects=False, timeout=10)


def assert_oauth_error(response: requests.Response, error: str) -> None:
    # RFC 6749 §5.2: 400 with a JSON body whose "error" names the failure.
    assert response.status_code == 400, f"{response.status_code}: {response.text}"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error, response.text


def verify_access_token(token: str, jwks_url: str, issuer: str) -> dict:
    """What a resource service does on its own: fetch the JWKS, pick the key by kid, check it all."""
    signing_key = jwt.PyJWKClient(jwks_url, cache_jwk_set=False).get_signing_key_from_jwt(token)
    # Every option spelled out on purpose, even the defaults: verification fails closed.
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],  # never what the token's header claims
        audience=API_AUDIENCE,
        issuer=issuer,
        leeway=0,
        options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"], "verify_signature": True},
    )


# -- the tests ----------------------------------------------------------------------

def test_browser_sign_in_consent_code_exchange_and_token_lifecycle(server, deployment):
    browser = requests.Session()
    client_app = requests.Session()
    client_app.auth = (deployment.client_id, deployment.client_secret)  # RFC 6749 §2.3.1: HTTP Basic
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    authorize_url = server.url("/oauth/authorize?" + urlencode({
        "response_type": "code",
        "client_id": deployment.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }))
    try:
        # 1. A browser without a session is sent to sign in, with the way back in `next`.
        login_url = redirect_location(browser.get(authorize_url, allow_redirects=False, timeout=10))
        assert urlsplit(login_url).path == "/login"
        assert same_url(server.url(query_of(login_url)["next"]), authorize_url)

        # 2. The sign-in form carries a CSRF token; signing in leads back to the authorization request.
        login_page = browser.get(login_url, allow_redirects=False, timeout=10)
        assert login_page.status_code == 200
        login_form = the_form(login_page)
        signed_in = browser.post(
            login_form.action,
            data={**login_form.hidden, "email": EMAIL, "password": PASSWORD},
            allow_redirects=False, timeout=10,
        )
        assert same_url(redirect_location(signed_in), authorize_url)

        # 3. The consent page names the client asking (RFC 6749 §10.2: the user must know who it is).
        consent_page = browser.get(authorize_url, allow_redirects=False, timeout=10)
        assert consent_page.status_code == 200, consent_page.text
        assert CLIENT_NAME in consent_page.text

        # 4. Allowing posts the form back to the same URL and redirects to the client with the code.
        consent_form = the_form(consent_page)
        assert same_url(consent_form.action, authorize_url)
        allowed = browser.post(
            consent_form.action, data={**consent_form.hidden, "decision": "allow"}, allow_redirects=False, timeout=10
        )
        callback = redirect_location(allowed)
        assert callback.split("?")[0] == REDIRECT_URI
        params = query_of(callback)
        assert params["state"] == state  # RFC 6749 §4.1.2: state returned exactly as sent
        assert params["iss"] == deployment.issuer  # RFC 9207 §2: the issuer identifies who answered
        code = params["code"]

        # 5. The code and the PKCE verifier buy tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).
        exchanged = token_request(
            client_app, server,
            grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier,
        )
        assert exchanged.status_code == 200, exchanged.text
        assert "no-store" in exchanged.headers["Cache-Control"]  # RFC 6749 §5.1
        tokens = exchanged.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["refresh_token"]

        # 6. The access token is a JWT for the API, signed by the key the CLI made (RFC 9068 §2.1: typ at+jwt).
        header = jwt.get_unverified_header(tokens["access_token"])
        assert header["typ"] == "at+jwt"
        assert header["kid"] == deployment.kid
        claims = verify_access_token(tokens["access_token"], server.url("/.well-known/jwks.json"), deployment.issuer)
        assert claims["sub"] == deployment.user_id
        assert claims["client_id"] == deployment.client_id
        assert (claims["email"], claims["name"]) == (EMAIL, NAME)

        # 7. A refresh rotates the refresh token (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
        refreshed = token_request(client_app, server, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        new_refresh_token = refreshed.json()["refresh_token"]
        assert new_refresh_token != tokens["refresh_token"]

        # 8. A retry of the rotated token within the grace window (AUTHSERVER_REFRESH_GRACE_SECONDS,
        # a client that lost the response) gets the same pair; after it, a replay revokes the family
        # (tests/races/test_token_races.py).
        retried = token_request(client_app, server, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert retried.status_code == 200, retried.text
        assert retried.json()["refresh_token"] == new_refresh_token
        assert retried.json()["access_token"] == refreshed.json()["access_token"]

        # 9. An authorization code is single-use (RFC 6749 §4.1.2, §10.5), and its replay revokes what
        # it issued: the whole refresh family, the rotated pair too.
        code_again = token_request(
            client_app, server,
            grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier,
        )
        assert_oauth_error(code_again, "invalid_grant")
        after_replay = token_request(client_app, server, grant_type="refresh_token", refresh_token=new_refresh_token)
        assert_oauth_error(after_replay, "invalid_grant")

        # 10. A grant the client was not registered for is refused (RFC 6749 §5.2: unauthorized_client).
        assert_oauth_error(token_request(client_app, server, grant_type="client_credentials"), "unauthorized_client")
    finally:
        browser.close()
        client_app.close()

    # 11. Nothing above made the server log an unhandled error.
    assert "Traceback" not in server.stderr(), server.stderr()


def test_serve_refuses_plain_http_issuer_off_loopback(tmp_path):
    # Tokens and redirects name the issuer, so it must be https:// (plain http only on loopback).
    env = authserver_env(
        AUTHSERVER_ISSUER="http://example.com",
        AUTHSERVER_DATABASE_URL=f"sqlite:///{tmp_path / 'authserver.db'}",
        AUTHSERVER_KEYS_DIR=str(tmp_path / "keys"),
        AUTHSERVER_INSTANCE_DIR=str(tmp_path / "instance"),
    )
    result = run_cli("serve", "--host", HOST, "--port", free_port(), "--workers", "1", env=env, cwd=tmp_path, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "AUTHSERVER_ISSUER" in lines[0] and "https" in lines[0]


def test_several_workers_without_redis_warn_that_throttling_is_per_worker(server):
    # Allowed (`dev.py up` runs so), but each worker then counts failed sign-ins on its own.
    assert server.stderr().count("warning: sign-in throttling counts in each of the 2 workers' memory") == 1
