"""Discovery metadata and the JWKS: what is advertised exists, and no private key part is published."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ..conftest import ISSUER

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
def test_metadata_names_the_issuer_and_only_real_endpoints(client, path):
    response = client.get(path)
    assert response.status_code == 200
    meta = response.get_json()
    assert meta["issuer"] == ISSUER
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert meta[name].startswith(ISSUER)
        endpoint = urlsplit(meta[name]).path
        answer = client.post(endpoint) if name == "token_endpoint" else client.get(endpoint)
        assert answer.status_code != 404, name


def test_jwks_publishes_public_keys_with_cache_control(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    keys = response.get_json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
        assert not PRIVATE_MEMBERS & set(key)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
