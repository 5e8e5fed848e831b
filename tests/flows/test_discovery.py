"""Discovery metadata is complete and true: every advertised endpoint exists and every advertised
method works; the JWKS publishes public keys only and follows key rotations. Both are prepared
bytes with an ETag a cache can revalidate."""

from __future__ import annotations

import shutil
import time
from urllib.parse import urlsplit

import jwt
import pytest
from flask import jsonify

from authserver.app import create_app
from authserver.oauth.keys import KeyStore

from ..conftest import ISSUER, REDIRECT_URI, pkce_pair
from ..helpers import authorize_query, authorize_url, decide, login, redirect_params
from .tokens import user_tokens

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}
METADATA_PATHS = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
REQUIRED = [
    "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
    "revocation_endpoint", "introspection_endpoint", "scopes_supported", "response_types_supported",
    "grant_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported", "code_challenge_methods_supported", "claims_supported",
    "authorization_response_iss_parameter_supported",
]


@pytest.fixture
def meta(client):
    return client.get(METADATA_PATHS[0]).get_json()


@pytest.mark.parametrize("path", METADATA_PATHS)
def test_both_documents_are_complete_and_name_this_issuer(client, path):
    response = client.get(path)
    assert response.status_code == 200
    document = response.get_json()
    assert not [name for name in REQUIRED if name not in document]
    assert document["issuer"] == ISSUER
    assert document == client.get(METADATA_PATHS[0]).get_json()
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["authorization_response_iss_parameter_supported"] is True


def test_every_advertised_endpoint_exists(client, meta):
    endpoints = {name: value for name, value in meta.items() if name.endswith(("_endpoint", "_uri")) and name != "issuer"}
    assert set(endpoints) == {
        "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
        "revocation_endpoint", "introspection_endpoint",
    }
    for name, url in endpoints.items():
        assert url.startswith(ISSUER + "/"), name
        path = urlsplit(url).path
        response = client.post(path) if name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint") \
            else client.get(path)
        assert response.status_code not in (404, 405, 500), (name, response.status_code)


def test_every_advertised_scope_is_in_the_catalogue_and_accepted(client, meta, make_client):
    row, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope=" ".join(meta["scopes_supported"]))
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(row.client_id, secret))
    assert response.get_json()["scope"].split() == meta["scopes_supported"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "none"])
def test_every_advertised_token_auth_method_works(client, meta, make_user, make_client, method):
    assert method in meta["token_endpoint_auth_methods_supported"]
    make_user(email="ada@example.com")
    if method == "none":
        row, secret = make_client(public=True, grant_types=["authorization_code"])
    else:
        row, secret = make_client(auth_method=method)
    login(client, "ada@example.com")
    verifier, challenge = pkce_pair()
    code = redirect_params(decide(client, authorize_url(authorize_query(row.client_id, challenge)), "allow"))["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    if method == "client_secret_basic":
        response = client.post("/oauth/token", data=data, auth=(row.client_id, secret))
    elif method == "client_secret_post":
        response = client.post("/oauth/token", data={**data, "client_id": row.client_id, "client_secret": secret})
    else:
        response = client.post("/oauth/token", data={**data, "client_id": row.client_id})
    assert response.status_code == 200, response.get_json()


def test_every_advertised_grant_type_works(client, meta, make_user, make_client):
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    make_user(email="ada@example.com")
    row, secret = make_client()
    body = user_tokens(client, row.client_id, secret, "ada@example.com")  # authorization_code
    refreshed = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                            auth=(row.client_id, secret))
    assert refreshed.status_code == 200
    machine = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(row.client_id, secret))
    assert machine.status_code == 200


def test_advertised_claims_and_prompts_are_served(client, meta, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(scope="openid profile email")
    body = user_tokens(client, row.client_id, secret, "ada@example.com", scope="openid profile email", nonce="n")
    id_claims = set(jwt.decode(body["id_token"], options={"verify_signature": False}))
    info = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).get_json()
    assert set(meta["claims_supported"]) - (id_claims | set(info)) == set()
    _, challenge = pkce_pair()  # consent for openid is remembered from the exchange above
    for prompt in meta["prompt_values_supported"]:
        response = client.get(authorize_url(authorize_query(row.client_id, challenge, scope="openid", prompt=prompt)))
        assert response.status_code in (200, 302)
        if response.status_code == 302 and "error" in redirect_params(response):
            pytest.fail(f"prompt={prompt}: {redirect_params(response)['error']}")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_every_advertised_auth_method_works_at_revocation_and_introspection(client, meta, make_client, method):
    assert method in meta["introspection_endpoint_auth_methods_supported"]
    assert method in meta["revocation_endpoint_auth_methods_supported"]
    row, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="read:users", auth_method=method)

    def call(path, **data):
        if method == "client_secret_basic":
            return client.post(path, data=data, auth=(row.client_id, secret))
        return client.post(path, data={**data, "client_id": row.client_id, "client_secret": secret})

    token = call("/oauth/token", grant_type="client_credentials").get_json()["access_token"]

    assert call("/oauth/introspect", token=token).get_json().get("active") is True
    assert call("/oauth/revoke", token=token).status_code == 200
    assert call("/oauth/introspect", token=token).get_json() == {"active": False}


def test_jwks_publishes_public_keys_with_cache_control(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    keys = response.get_json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
        assert not PRIVATE_MEMBERS & set(key)


WELL_KNOWN = [*METADATA_PATHS, "/.well-known/jwks.json"]


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_documents_are_the_bytes_jsonify_writes(app, client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.content_type == "application/json"
    with app.app_context():
        assert response.get_data() == jsonify(response.get_json()).get_data()
    assert client.get(path).get_data() == response.get_data()


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_a_cache_revalidates_with_the_etag_and_gets_a_304_without_a_body(client, path):
    first = client.get(path)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2  # strong: the bytes never vary
    # RFC 9110 §13.1.2: If-None-Match compares weakly, and "*" matches any current representation.
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(path, headers={"If-None-Match": if_none_match})
        assert response.status_code == 304, if_none_match
        assert response.get_data() == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    stale = client.get(path, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    assert stale.get_data() == first.get_data() and stale.headers["ETag"] == etag


def test_the_served_jwks_follows_a_key_rotation_within_the_reload_interval(settings_overrides, keys_dir, tmp_path):
    keys = KeyStore(shutil.copytree(keys_dir, tmp_path / "keys"))
    client = create_app({**settings_overrides, "keys_dir": str(keys.directory), "key_reload_seconds": 1}).test_client()
    before = client.get("/.well-known/jwks.json")

    new_kid = keys.rotate(retired_lifetime=3600, force=True)[-1].kid
    rotated_at = time.monotonic()
    while (after := client.get("/.well-known/jwks.json")).get_data() == before.get_data():
        assert time.monotonic() - rotated_at < 1 + 3.0, "the JWKS did not follow the rotation"
        time.sleep(0.02)

    assert new_kid in [key["kid"] for key in after.get_json()["keys"]]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Cache-Control"] == "public, max-age=300"
    # A cache still holding the old key set gets the new one, not a 304.
    revalidated = client.get("/.well-known/jwks.json", headers={"If-None-Match": before.headers["ETag"]})
    assert revalidated.status_code == 200 and revalidated.get_data() == after.get_data()


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
