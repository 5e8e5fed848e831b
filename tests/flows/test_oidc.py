"""OpenID Connect: ID tokens, the authorization request parameters, refresh and offline_access."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import urlencode

import jwt
import pytest

from ..conftest import ISSUER, pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, decide, login, redirect_params, redirect_target
from .tokens import refresh, user_tokens

SCOPE = "openid profile email offline_access read:users"


@pytest.fixture
def rp(client, make_user, make_client):
    """A relying party and its signed-in user."""
    make_user(email="ada@example.com")
    row, secret = make_client(scope=SCOPE, post_logout_redirect_uris=["https://app.example.com/signed-out"])
    return row.client_id, secret


def verify_id_token(client, token: str, audience: str) -> dict:
    jwks = client.get("/.well-known/jwks.json").get_json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT" and header["alg"] == "RS256"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience, issuer=ISSUER,
                      options={"require": ["iss", "sub", "aud", "exp", "iat"]})


def test_id_token_claims(client, rp):
    client_id, secret = rp
    before = int(time.time())
    body = user_tokens(client, client_id, secret, "ada@example.com", scope="openid profile email", nonce="n-0S6")
    claims = verify_id_token(client, body["id_token"], client_id)
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == access["sub"] and claims["sub"].startswith("user_")
    assert claims["azp"] == client_id
    assert claims["nonce"] == "n-0S6"
    assert before <= claims["auth_time"] <= claims["iat"]
    assert claims["sid"]
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["name"] == "Ada Lovelace"
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is False


def test_claims_follow_scope_and_no_id_token_without_openid(client, rp):
    client_id, secret = rp
    openid_only = user_tokens(client, client_id, secret, "ada@example.com", scope="openid")
    claims = verify_id_token(client, openid_only["id_token"], client_id)
    assert "name" not in claims and "email" not in claims and "nonce" not in claims
    plain = user_tokens(client, client_id, secret, "ada@example.com", scope="read:users")
    assert "id_token" not in plain


def test_refresh_returns_an_id_token_for_the_original_authentication(client, rp):
    client_id, secret = rp
    first = user_tokens(client, client_id, secret, "ada@example.com", scope="openid profile", nonce="abc")
    original = verify_id_token(client, first["id_token"], client_id)
    refreshed = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    claims = verify_id_token(client, refreshed["id_token"], client_id)
    # OIDC Core §12.2: same iss, sub, aud, auth_time; no nonce.
    assert claims["sub"] == original["sub"]
    assert claims["auth_time"] == original["auth_time"]
    assert "nonce" not in claims


def test_signing_out_revokes_session_bound_refresh_tokens_but_not_offline_ones(client, rp):
    client_id, secret = rp
    offline = user_tokens(client, client_id, secret, "ada@example.com", scope="openid offline_access")
    online = user_tokens(client, client_id, secret, "ada@example.com", scope="openid read:users")
    page = client.get("/logout")
    client.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert refresh(client, client_id, secret, online["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert refresh(client, client_id, secret, offline["refresh_token"]).status_code == 200


def test_refreshed_id_token_of_an_offline_grant_names_the_session_for_logout(client, rp):
    # OIDC Core §12.2: a refreshed ID token follows the rules of the original, sid included, so the
    # RP-Initiated Logout hint a relying party holds last still ends this session at once; the
    # offline grant itself outlives the session (§11).
    client_id, secret = rp
    first = user_tokens(client, client_id, secret, "ada@example.com", scope="openid offline_access")
    refreshed = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    sid = verify_id_token(client, first["id_token"], client_id)["sid"]
    assert verify_id_token(client, refreshed["id_token"], client_id)["sid"] == sid
    query = urlencode({"id_token_hint": refreshed["id_token"], "post_logout_redirect_uri": "https://app.example.com/signed-out"})
    assert client.get(f"/oauth/logout?{query}").status_code == 302
    assert refresh(client, client_id, secret, refreshed["refresh_token"]).status_code == 200


# -- prompt, max_age and friends (OIDC Core §3.1.2.1) -------------------------------------

def authorize(client, client_id, **extra):
    _, challenge = pkce_pair()
    return client.get(authorize_url(authorize_query(client_id, challenge, scope="openid", **extra)))


def test_prompt_none_when_signed_out_is_login_required(client, rp):
    response = authorize(client, rp[0], prompt="none", state="st")
    assert redirect_target(response) == "https://app.example.com/callback"
    assert redirect_params(response) == {"error": "login_required", "error_description": redirect_params(response)["error_description"],
                                         "state": "st", "iss": ISSUER}


def test_prompt_none_without_consent_is_consent_required(client, rp):
    login(client, "ada@example.com")
    response = authorize(client, rp[0], prompt="none")
    assert redirect_params(response)["error"] == "consent_required"


def test_prompt_none_with_consent_issues_a_code(client, rp):
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    decide(client, authorize_url(authorize_query(rp[0], challenge, scope="openid")), "allow")
    response = authorize(client, rp[0], prompt="none")
    assert "code" in redirect_params(response)


def test_prompt_consent_asks_again(client, rp):
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    decide(client, authorize_url(authorize_query(rp[0], challenge, scope="openid")), "allow")
    assert authorize(client, rp[0], prompt="consent").status_code == 200


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"prompt": "select_account"}, {"max_age": "0"}])
def test_reauthentication_then_back_without_loop(client, rp, extra):
    login(client, "ada@example.com")
    response = authorize(client, rp[0], **extra)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?")
    back = client.get(location)
    assert back.status_code == 200
    signed_in = client.post(location, data={"email": "ada@example.com", "password": "correct horse battery staple",
                                            "csrf_token": csrf_token(back.get_data(as_text=True))})
    follow = client.get(signed_in.headers["Location"])
    assert follow.status_code == 200  # the consent page, not another trip to /login
    assert "Allow" in follow.get_data(as_text=True)


def test_recent_enough_sign_in_satisfies_max_age(client, rp):
    login(client, "ada@example.com")
    response = authorize(client, rp[0], max_age="3600")
    assert response.status_code == 200  # consent page: no new login needed


def test_login_hint_prefills_the_email(client, rp):
    response = authorize(client, rp[0], login_hint="ada@example.com")
    page = client.get(response.headers["Location"])
    assert 'value="ada@example.com"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://app.example.com/r/1"}, "request_uri_not_supported"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"nonce": "x" * 256}, "invalid_request"),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value)),
)
def test_refused_parameters_are_redirected_with_the_right_error(client, rp, extra, error):
    login(client, "ada@example.com")
    response = authorize(client, rp[0], state="s1", **extra)
    params = redirect_params(response)
    assert params["error"] == error
    assert params["state"] == "s1" and params["iss"] == ISSUER


def test_unknown_parameters_and_ui_locales_are_ignored(client, rp):
    login(client, "ada@example.com")
    response = authorize(client, rp[0], ui_locales="fr-CA en", claims_locales="de", foo="bar", response_mode="query")
    assert response.status_code == 200
