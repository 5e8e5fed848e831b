"""client_credentials: confidential clients only; the client is the subject."""

from __future__ import annotations

import jwt
import pytest

from ..conftest import ISSUER


@pytest.fixture
def machine_client(make_client):
    row, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="read:users write:data")
    return row.client_id, secret


def decode(token: str, jwks: dict) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="http://127.0.0.1:5001", issuer=ISSUER)


@pytest.mark.parametrize("auth", ["client_secret_basic", "client_secret_post"])
def test_token_for_the_client_itself(client, make_client, auth):
    row, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="read:users", auth_method=auth)
    data = {"grant_type": "client_credentials", "scope": "read:users"}
    if auth == "client_secret_basic":
        response = client.post("/oauth/token", data=data, auth=(row.client_id, secret))
    else:
        response = client.post("/oauth/token", data={**data, "client_id": row.client_id, "client_secret": secret})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert "refresh_token" not in body
    claims = decode(body["access_token"], client.get("/.well-known/jwks.json").get_json())
    assert claims["sub"] == row.client_id
    assert claims["client_id"] == row.client_id
    assert claims["scope"] == ["read:users"]
    assert "email" not in claims


def test_json_body_means_the_same_as_a_form(client, machine_client):
    client_id, secret = machine_client
    response = client.post(
        "/oauth/token", json={"grant_type": "client_credentials", "scope": "write:data"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "write:data"


def test_omitted_scope_means_all_registered_scopes(client, machine_client):
    client_id, secret = machine_client
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert response.get_json()["scope"] == "read:users write:data"


def test_scope_outside_registration_is_refused(client, machine_client):
    client_id, secret = machine_client
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": "read:users openid"}, auth=(client_id, secret)
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_wrong_secret_is_invalid_client_with_challenge(client, machine_client):
    client_id, _ = machine_client
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "tds_wrong"))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_client_without_the_grant_is_unauthorized(client, make_client):
    row, secret = make_client(grant_types=["authorization_code"])
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(row.client_id, secret))
    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"
