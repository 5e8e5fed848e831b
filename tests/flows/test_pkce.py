"""PKCE (RFC 7636): S256 only, required for every client unless a confidential one relaxes it."""

from __future__ import annotations

from ..conftest import REDIRECT_URI, pkce_pair
from ..helpers import authorize_query, authorize_url, decide, login, redirect_params


def code_without_pkce(client, client_id: str):
    login(client, "ada@example.com")
    return decide(client, authorize_url(authorize_query(client_id, None)), "allow")


def test_public_client_cannot_skip_pkce(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, _ = make_client(public=True, grant_types=["authorization_code"])
    login(client, "ada@example.com")
    response = client.get(authorize_url(authorize_query(row.client_id, None)))
    assert redirect_params(response)["error"] == "invalid_request"


def test_confidential_client_needs_pkce_by_default(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, _ = make_client()
    login(client, "ada@example.com")
    response = client.get(authorize_url(authorize_query(row.client_id, None)))
    assert redirect_params(response)["error"] == "invalid_request"


def test_confidential_client_may_relax_pkce(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(require_pkce=False)
    response = code_without_pkce(client, row.client_id)
    code = redirect_params(response)["code"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(row.client_id, secret),
    )
    assert token.status_code == 200, token.get_json()


def test_relaxed_client_still_has_its_challenge_checked(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(require_pkce=False)
    login(client, "ada@example.com")
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    response = decide(client, authorize_url(authorize_query(row.client_id, challenge)), "allow")
    token = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": redirect_params(response)["code"],
              "redirect_uri": REDIRECT_URI, "code_verifier": other_verifier},
        auth=(row.client_id, secret),
    )
    assert token.status_code == 400
    assert token.get_json()["error"] == "invalid_grant"


def test_public_client_exchanges_with_verifier_and_no_secret(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, _ = make_client(public=True, grant_types=["authorization_code"])
    login(client, "ada@example.com")
    verifier, challenge = pkce_pair()
    response = decide(client, authorize_url(authorize_query(row.client_id, challenge)), "allow")
    token = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": redirect_params(response)["code"],
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier, "client_id": row.client_id},
    )
    assert token.status_code == 200, token.get_json()
