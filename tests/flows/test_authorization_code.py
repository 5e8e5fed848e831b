"""Authorization code + PKCE through the browser pages and the token endpoint."""

from __future__ import annotations

import jwt
import pytest

from ..conftest import ISSUER, REDIRECT_URI, pkce_pair
from ..helpers import (
    authorize_query,
    authorize_url,
    decide,
    get_code,
    login,
    redirect_params,
    redirect_target,
)


@pytest.fixture
def setup(client, make_user, make_client):
    user = make_user(email="ada@example.com")
    row, secret = make_client()
    return user, row.client_id, secret


def exchange(client, client_id, secret, code, verifier, redirect_uri=REDIRECT_URI):
    return client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier},
        auth=(client_id, secret),
    )


def test_anonymous_user_is_sent_to_login_and_back(client, setup):
    user, client_id, _ = setup
    _, challenge = pkce_pair()
    url = authorize_url(authorize_query(client_id, challenge))
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    after_login = login(client, "ada@example.com", next_url=url)
    assert after_login.status_code == 302
    assert after_login.headers["Location"] == url


def test_consent_screen_names_client_and_describes_each_scope(client, setup):
    _, client_id, _ = setup
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    page = client.get(authorize_url(authorize_query(client_id, challenge, scope="openid read:users")))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Example App" in html
    assert "Read user information" in html
    assert "Sign you in and confirm your identity" in html


def test_allow_redirects_with_code_state_and_issuer(client, setup):
    _, client_id, _ = setup
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    response = decide(client, authorize_url(authorize_query(client_id, challenge, state="s-123")), "allow")
    assert response.status_code == 302
    assert redirect_target(response) == REDIRECT_URI
    params = redirect_params(response)
    assert params["state"] == "s-123"
    assert params["iss"] == ISSUER
    assert len(params["code"]) >= 43


def test_deny_redirects_with_access_denied(client, setup):
    _, client_id, _ = setup
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    response = decide(client, authorize_url(authorize_query(client_id, challenge)), "deny")
    params = redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["state"] == "xyz"
    assert params["iss"] == ISSUER
    assert "code" not in params


def test_consent_is_remembered_for_the_same_or_smaller_scope_set(client, setup):
    _, client_id, _ = setup
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    decide(client, authorize_url(authorize_query(client_id, challenge, scope="openid read:users")), "allow")
    again = client.get(authorize_url(authorize_query(client_id, challenge, scope="read:users")))
    assert again.status_code == 302
    assert "code" in redirect_params(again)
    wider = client.get(authorize_url(authorize_query(client_id, challenge, scope="openid read:users write:data")))
    assert wider.status_code == 200  # a new scope asks again


def test_code_exchange_issues_signed_tokens(client, app, setup):
    user, client_id, secret = setup
    login(client, "ada@example.com")
    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge, scope="openid read:users")
    response = exchange(client, client_id, secret, code, verifier)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid read:users"
    assert body["refresh_token"].startswith("tdr_")

    jwks = client.get("/.well-known/jwks.json").get_json()
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        body["access_token"],
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="http://127.0.0.1:5001",
        issuer=ISSUER,
    )
    assert claims["sub"] == user.public_id and claims["sub"].startswith("user_")
    assert claims["client_id"] == client_id
    assert claims["scope"] == ["openid", "read:users"]
    assert claims["email"] == "ada@example.com"
    assert claims["name"] == "Ada Lovelace"
    assert claims["plan"] == "free"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]
