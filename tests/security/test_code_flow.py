"""RFC 9700 §4.4 (mix-up), §4.5 (authorization code injection), §4.8 (PKCE downgrade), §4.6
(no access token in the front channel), §2.1.2 and §2.4 (implicit and password grants refused)."""

from __future__ import annotations


from ..conftest import ISSUER, REDIRECT_URI, pkce_pair
from ..flows.stored_state import unchanged
from ..flows.tokens import refresh
from ..helpers import authorize_query, authorize_url, decide, login, redirect_params
from .conftest import EMAIL, code_for, redeem

OTHER_REDIRECT_URI = "https://app.example.com/other-callback"


def invalid_grant(response) -> None:
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_grant"


# -- §4.4 mix-up ---------------------------------------------------------------------------------

def test_authorization_responses_name_the_issuer(client, world):
    """RFC 9700 §4.4.2.1 (RFC 9207): the success and the error redirect both carry `iss`, this
    server's issuer, beside the echoed `state`."""
    login(client, EMAIL)
    _, challenge = pkce_pair()
    denied = decide(client, authorize_url(authorize_query(world.client_id, challenge, state="s2")), "deny")
    allowed = decide(client, authorize_url(authorize_query(world.client_id, challenge, state="s1")), "allow")
    bad_scope = client.get(authorize_url(authorize_query(world.client_id, challenge, state="s3", scope="nope")))
    for response, state in ((allowed, "s1"), (denied, "s2"), (bad_scope, "s3")):
        assert response.status_code == 302
        params = redirect_params(response)
        assert params["iss"] == ISSUER and params["state"] == state, params
    assert "code" in redirect_params(allowed)
    assert redirect_params(denied)["error"] == "access_denied"
    assert redirect_params(bad_scope)["error"] == "invalid_scope"


def test_discovery_advertises_the_iss_parameter(client):
    """RFC 9700 §4.4.2.1: clients learn from the metadata (RFC 8414, RFC 9207 §3) that `iss` is sent."""
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["issuer"] == ISSUER
    assert metadata["authorization_response_iss_parameter_supported"] is True
    oauth_metadata = client.get("/.well-known/oauth-authorization-server")
    if oauth_metadata.status_code == 200:
        assert oauth_metadata.get_json()["authorization_response_iss_parameter_supported"] is True


# -- §4.5 code injection -------------------------------------------------------------------------

def test_a_code_is_refused_to_another_client(client, world, database_url):
    """RFC 9700 §4.5 (RFC 6749 §4.1.3): a code issued to client A, injected into client B's
    redemption (B's own credentials, A's verifier even), is refused and changes nothing; A can
    still redeem it."""
    code, verifier = code_for(client, world.client_id)
    with unchanged(database_url):
        invalid_grant(redeem(client, code, verifier, client_id=world.other_id, secret=world.other_secret))
    assert redeem(client, code, verifier, client_id=world.client_id, secret=world.secret).status_code == 200


def test_a_code_is_refused_with_another_redirect_uri(client, world, make_client, database_url):
    """RFC 9700 §4.5 (RFC 6749 §4.1.3): the redirect_uri at redemption must be the one the code was
    issued for, even when the other one is registered for the same client."""
    row, secret = make_client(name="Two URIs", redirect_uris=[REDIRECT_URI, OTHER_REDIRECT_URI])
    code, verifier = code_for(client, row.client_id)
    with unchanged(database_url):
        invalid_grant(redeem(client, code, verifier, client_id=row.client_id, secret=secret,
                             redirect_uri=OTHER_REDIRECT_URI))
        invalid_grant(redeem(client, code, verifier, client_id=row.client_id, secret=secret, redirect_uri=""))
    assert redeem(client, code, verifier, client_id=row.client_id, secret=secret).status_code == 200


def test_a_code_is_refused_with_another_verifier(client, world, database_url):
    """RFC 9700 §4.5.3.1: PKCE binds the code to the session that started the flow: an attacker who
    injects a stolen code into their own session redeems it with their own verifier, refused."""
    code, verifier = code_for(client, world.public_id)
    attacker_verifier, _ = pkce_pair()
    with unchanged(database_url):
        invalid_grant(redeem(client, code, attacker_verifier, client_id=world.public_id))
    assert redeem(client, code, verifier, client_id=world.public_id).status_code == 200


def test_a_public_clients_code_is_refused_to_another_public_client(client, world, make_client, database_url):
    """RFC 9700 §4.5: public clients have no secret, so the client_id binding is all that keeps
    one app from redeeming another's code."""
    other, _ = make_client(name="Another Public App", public=True)
    code, verifier = code_for(client, world.public_id)
    with unchanged(database_url):
        invalid_grant(redeem(client, code, verifier, client_id=other.client_id))
    assert redeem(client, code, verifier, client_id=world.public_id).status_code == 200


def test_a_redeemed_code_replayed_revokes_what_it_issued(client, world):
    """RFC 9700 §4.5 with RFC 6749 §4.1.2: a code is single-use; its replay is refused and the
    tokens of the first redemption are revoked (the replay means it leaked)."""
    code, verifier = code_for(client, world.client_id)
    first = redeem(client, code, verifier, client_id=world.client_id, secret=world.secret).get_json()
    invalid_grant(redeem(client, code, verifier, client_id=world.client_id, secret=world.secret))
    introspected = client.post("/oauth/introspect", data={"token": first["access_token"]},
                               auth=(world.client_id, world.secret)).get_json()
    assert introspected == {"active": False}
    invalid_grant(refresh(client, world.client_id, world.secret, first["refresh_token"]))


# -- §4.8 PKCE downgrade -------------------------------------------------------------------------

def test_a_verifier_dropped_at_redemption_is_refused(client, world, database_url):
    """RFC 9700 §4.8.2: a code issued with a code_challenge is redeemed only with its verifier; an
    attacker who injects it and leaves the verifier out is refused (confidential client too)."""
    for client_id, secret in ((world.client_id, world.secret), (world.public_id, None)):
        code, verifier = code_for(client, client_id)
        with unchanged(database_url):
            response = redeem(client, code, None, client_id=client_id, secret=secret)
            assert response.status_code == 400 and response.get_json()["error"] in ("invalid_request", "invalid_grant")
        assert redeem(client, code, verifier, client_id=client_id, secret=secret).status_code == 200


def test_a_verifier_without_a_challenge_is_refused(client, make_user, make_client, database_url):
    """RFC 9700 §4.8.2: a code_verifier at redemption of a code issued *without* a challenge is
    refused: otherwise an attacker could get a code with no challenge and redeem it in a session
    whose client sends a verifier. Needs a confidential client registered with PKCE relaxed (the
    only kind that may omit the challenge)."""
    make_user(email=EMAIL)
    row, secret = make_client(require_pkce=False)
    login(client, EMAIL)
    response = decide(client, authorize_url(authorize_query(row.client_id, None)), "allow")
    code = redirect_params(response)["code"]
    verifier, _ = pkce_pair()
    with unchanged(database_url):
        response = redeem(client, code, verifier, client_id=row.client_id, secret=secret)
        assert response.status_code == 400 and response.get_json()["error"] in ("invalid_request", "invalid_grant")
    assert redeem(client, code, None, client_id=row.client_id, secret=secret).status_code == 200


def test_only_s256_challenges_are_accepted(client, world, database_url):
    """RFC 9700 §2.1.1, §4.8: `plain` (and an omitted method, which means plain, RFC 7636 §4.3) is
    refused: the server supports S256 only, and says so in its metadata
    (code_challenge_methods_supported). The error goes to the registered redirect URI."""
    login(client, EMAIL)
    verifier, _ = pkce_pair()
    for method in ("plain", None, "s256", "S512"):  # None: left out
        with unchanged(database_url):
            response = client.get(authorize_url(authorize_query(world.client_id, verifier, method=method)))
        assert response.status_code == 302, method
        assert redirect_params(response)["error"] == "invalid_request", method
        assert "code" not in redirect_params(response)
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_a_request_without_a_challenge_is_refused(client, world):
    """RFC 9700 §2.1.1, §4.8: PKCE is required (public clients always, confidential ones unless
    registered otherwise), so no code is ever issued that PKCE does not protect."""
    login(client, EMAIL)
    for client_id in (world.client_id, world.public_id):
        response = client.get(authorize_url(authorize_query(client_id, None)))
        assert response.status_code == 302 and redirect_params(response)["error"] == "invalid_request"


# -- §4.6, §2.1.2, §2.4: no tokens in the front channel, no password grant -----------------------

def test_no_response_type_puts_a_token_in_the_front_channel(client, world, database_url):
    """RFC 9700 §2.1.2, §4.6: the implicit grant (and hybrid responses) would put tokens in the
    browser's URL, where they can be leaked or injected: only `code` is served."""
    login(client, EMAIL)
    _, challenge = pkce_pair()
    for response_type in ("token", "id_token", "code token", "code id_token", "id_token token"):
        with unchanged(database_url):
            query = authorize_query(world.client_id, challenge, response_type=response_type)
            response = client.get(authorize_url(query))
        assert response.status_code == 302, response_type
        params = redirect_params(response)
        assert params["error"] == "unsupported_response_type", response_type
        assert not {"access_token", "id_token", "code"} & set(params)
        assert "#" not in response.headers["Location"]


def test_the_password_grant_is_not_served(client, world, database_url):
    """RFC 9700 §2.4: the resource owner password credentials grant MUST NOT be used."""
    with unchanged(database_url):
        response = client.post("/oauth/token", data={"grant_type": "password", "username": EMAIL,
                                                      "password": "correct horse battery staple"},
                               auth=(world.client_id, world.secret))
    assert response.status_code == 400 and response.get_json()["error"] == "unsupported_grant_type"
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert "password" not in metadata["grant_types_supported"]
    assert "implicit" not in metadata["grant_types_supported"]
    assert metadata["response_types_supported"] == ["code"]
