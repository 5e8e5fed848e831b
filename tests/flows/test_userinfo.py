"""Userinfo (OIDC Core §5.3) and its Bearer-token errors (RFC 6750 §3)."""

from __future__ import annotations

import time

import pytest

from authserver.storage import access_tokens
from authserver.storage.db import session

from .tokens import user_tokens


@pytest.fixture
def tokens(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(scope="openid profile email read:users")
    return row, secret


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_claims_by_scope_get_and_post(client, tokens):
    row, secret = tokens
    body = user_tokens(client, row.client_id, secret, "ada@example.com", scope="openid email")
    for response in (
        client.get("/oauth/userinfo", headers=bearer(body["access_token"])),
        client.post("/oauth/userinfo", headers=bearer(body["access_token"])),
        client.post("/oauth/userinfo", data={"access_token": body["access_token"]}),
    ):
        assert response.status_code == 200
        claims = response.get_json()
        assert claims["sub"].startswith("user_")
        assert claims["email"] == "ada@example.com" and claims["email_verified"] is False
        assert "name" not in claims
        assert response.headers["Cache-Control"] == "no-store"


def test_missing_token_is_a_bare_challenge(client):
    response = client.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="http://localhost"'


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ1c2VyXzEifQ."],
    ids=["garbage", "three-parts", "alg-none"],
)
def test_bad_tokens_are_invalid_token(client, token):
    response = client.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_tampered_id_token_and_revoked_tokens_are_refused(client, app, tokens):
    row, secret = tokens
    body = user_tokens(client, row.client_id, secret, "ada@example.com", scope="openid profile")
    header, payload, signature = body["access_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert client.get("/oauth/userinfo", headers=bearer(tampered)).status_code == 401
    # An ID token is not an access token (RFC 9068 §4, typ).
    assert client.get("/oauth/userinfo", headers=bearer(body["id_token"])).status_code == 401

    import jwt

    jti = jwt.decode(body["access_token"], options={"verify_signature": False})["jti"]
    with app.app_context():
        access_tokens.deny(jti, int(time.time()) + 3600)
        session().commit()
    assert client.get("/oauth/userinfo", headers=bearer(body["access_token"])).status_code == 401


def test_token_without_openid_scope_is_insufficient_scope(client, tokens):
    row, secret = tokens
    body = user_tokens(client, row.client_id, secret, "ada@example.com", scope="read:users")
    response = client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
    assert 'scope="openid"' in response.headers["WWW-Authenticate"]


def test_token_sent_twice_is_invalid_request(client, tokens):
    row, secret = tokens
    body = user_tokens(client, row.client_id, secret, "ada@example.com", scope="openid")
    response = client.post("/oauth/userinfo", headers=bearer(body["access_token"]),
                           data={"access_token": body["access_token"]})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
