"""RFC 9700 §4.6 (access token injection), §4.9 (access token leakage at the resource server) and
§4.10.2 (audience-restricted access tokens), at the sample API service (authserver/api) in front of
the real authorization server (tests/resource/live.py): a token is accepted only if it is ours,
signed with our published key and algorithm, and meant for this API."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from authserver.api import ApiConfig, create_api_app
from authserver.api.app import EXTENSION

from ..api.conftest import api, client, server  # noqa: F401  (fixtures: the live server, a fresh API)
from ..resource.live import compact, hs256_with_public_key

ME = "/v1/users/me"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def refused(response) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "INVALID_TOKEN"


def test_the_apis_own_tokens_are_accepted(server, client):
    """The control for the tests below: a real user token of this server, for this API."""
    response = client.get(ME, headers=bearer(server.user_tokens()["access_token"]))
    assert response.status_code == 200, response.get_json()


def test_a_token_for_another_audience_is_refused(server, client):
    """RFC 9700 §4.10.2: a token this very server issued and signed, but for another resource
    server (what a counterfeit or compromised resource server would replay here), is refused."""
    refused(client.get(ME, headers=bearer(server.sign(server.claims(aud="https://other-api.example")))))
    refused(client.get(ME, headers=bearer(server.sign(server.claims(aud=["https://other-api.example"])))))


def test_this_apis_token_is_refused_by_another_resource_server(server):
    """RFC 9700 §4.9.1, §4.10.2: the other direction: a token for this API, leaked to (or phished
    by) another resource server, is worthless there."""
    other = create_api_app(ApiConfig(issuer=server.issuer, audience="https://other-api.example"))
    try:
        refused(other.test_client().get(ME, headers=bearer(server.user_tokens()["access_token"])))
    finally:
        other.extensions[EXTENSION].limiter.close()


def test_an_id_token_issued_to_a_client_is_refused(server, client):
    """RFC 9700 §4.6, §4.10.2: an ID token (audience: the client it was issued to, typ JWT) is not
    an access token: injected at the API it is refused, though signed with the same key."""
    refused(client.get(ME, headers=bearer(server.user_tokens()["id_token"])))


def test_a_token_of_another_issuer_is_refused(server, client):
    """RFC 9700 §4.6: a token claiming another issuer, even signed with our key, is refused."""
    refused(client.get(ME, headers=bearer(server.sign(server.claims(iss="https://evil.example")))))


@pytest.mark.parametrize("forge", [
    lambda s: s.sign(key=RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))),
    hs256_with_public_key,
    lambda s: compact({"alg": "none", "typ": "at+jwt", "kid": s.active_key().kid}, s.claims()),
    lambda s: s.sign(alg="RS384"),
], ids=["another key claiming our kid", "HS256 keyed with our public key", "alg none", "RS384"])
def test_forged_tokens_are_refused(server, client, forge):
    """RFC 9700 §4.6: tokens signed by another key, or with an algorithm the server never uses
    (algorithm confusion), are refused."""
    refused(client.get(ME, headers=bearer(forge(server))))
