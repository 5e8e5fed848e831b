"""RFC 9700 §4.1 (insufficient redirect URI validation) and §4.11 (open redirection): the
authorization endpoint and RP-initiated logout send the browser only to a URI registered for the
client, matched exactly; anything else is an error page here, never a redirect."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from ..conftest import REDIRECT_URI, pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, login, signed_in_as
from .conftest import EMAIL

SIGNED_OUT = "https://app.example.com/signed-out"

# Each differs from the registered https://app.example.com/callback in one way an attacker would try.
NEAR_MISSES = [
    "https://app.example.com/callback/evil",  # prefix match
    "https://app.example.com/callbackevil",
    "https://app.example.com/callback/../evil",  # path traversal
    "https://app.example.com/callback/%2e%2e/evil",
    "https://app.example.com/evil/../callback",
    "https://app.example.com.evil.example/callback",  # host suffix
    "https://evil.example/app.example.com/callback",
    "https://app.example.com@evil.example/callback",  # userinfo
    "https://evil.example@app.example.com/callback",
    "https://app.example.com\\@evil.example/callback",
    "https://app.example.com:443/callback",  # port, even the default one
    "https://app.example.com:8443/callback",
    "http://app.example.com/callback",  # scheme
    "HTTPS://app.example.com/callback",  # case
    "https://APP.example.com/callback",
    "https://app.example.com/Callback",
    "https://app.example.com/callback#evil",  # fragment
    "https://app.example.com/callback?next=https://evil.example",  # query added
    "https://app.example.com/callback/",  # trailing slash
    "https://app.example.com/%63allback",  # percent-encoded
    "https%3A%2F%2Fapp.example.com%2Fcallback",
    " https://app.example.com/callback",  # whitespace
    "https://app.example.com/callback%00",
    "//app.example.com/callback",  # scheme-relative
    "javascript://app.example.com/callback",
]


def refused_here(response) -> None:
    """An error page of this server: no Location, so the browser goes nowhere."""
    assert response.status_code == 400, (response.request.url, response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def test_near_miss_redirect_uris_get_an_error_page(client, world):
    """RFC 9700 §4.1.3, §4.11.2: exact string matching; each near miss is shown as an error here,
    to a signed-in user too (who would otherwise be sent on with a code). One test, all variants:
    each costs a request, a test of its own would cost an app and a sign-in."""
    _, challenge = pkce_pair()
    urls = [authorize_url(authorize_query(world.client_id, challenge, redirect_uri=uri)) for uri in NEAR_MISSES]
    for url in urls:
        refused_here(client.get(url))
    login(client, EMAIL)
    for url in urls:
        refused_here(client.get(url))
    # The control: the registered URI itself is accepted (the consent page).
    assert client.get(authorize_url(authorize_query(world.client_id, challenge))).status_code == 200


@pytest.mark.parametrize("extra", [{"scope": "openid not-a-scope"}, {"response_type": "token"}, {"prompt": "none"}])
def test_an_erroneous_request_is_not_redirected_to_an_unregistered_uri(client, world, extra):
    """RFC 9700 §4.11.2 (RFC 6749 §4.1.2.1): with a bad redirect URI, errors that would otherwise
    be redirected (bad scope, response type, prompt=none) are shown here too."""
    _, challenge = pkce_pair()
    query = authorize_query(world.client_id, challenge, redirect_uri="https://evil.example/callback", **extra)
    refused_here(client.get(authorize_url(query)))


@pytest.mark.parametrize("client_id", ["client_unknown", "", None])
def test_an_unknown_client_is_never_redirected_to(client, world, client_id):
    """RFC 9700 §4.11.2: an unknown client has no registered URI, so nothing is redirected to."""
    _, challenge = pkce_pair()
    query = authorize_query(client_id, challenge, redirect_uri="https://evil.example/callback")
    refused_here(client.get(authorize_url(query)))


def test_another_clients_redirect_uri_is_refused(client, world, make_client):
    """RFC 9700 §4.1: a URI registered for client B does not serve client A."""
    make_client(name="Evil App", redirect_uris=["https://evil.example/callback"])
    login(client, EMAIL)
    _, challenge = pkce_pair()
    query = authorize_query(world.client_id, challenge, redirect_uri="https://evil.example/callback")
    refused_here(client.get(authorize_url(query)))


@pytest.fixture
def logout_client(client, make_user, make_client):
    make_user(email=EMAIL)
    row, _ = make_client(post_logout_redirect_uris=[SIGNED_OUT])
    login(client, EMAIL)
    return row.client_id


LOGOUT_NEAR_MISSES = [
    "https://evil.example/",
    SIGNED_OUT + "/",
    SIGNED_OUT + "evil",
    SIGNED_OUT + "?next=https://evil.example",
    SIGNED_OUT + "#x",
    "https://app.example.com.evil.example/signed-out",
    "https://app.example.com@evil.example/signed-out",
    "http://app.example.com/signed-out",
    "https://APP.example.com/signed-out",
    REDIRECT_URI,  # registered for sign-in, not for sign-out
]


def test_logout_redirects_only_to_a_registered_post_logout_uri(client, logout_client):
    """RFC 9700 §4.11.2 at OpenID Connect RP-Initiated Logout (`/oauth/logout`): the
    post_logout_redirect_uri is matched exactly against the client's registration, by GET and by
    a confirmed POST, before anything else happens: the user stays signed in."""
    token = csrf_token(client.get("/logout").get_data(as_text=True))
    for uri in LOGOUT_NEAR_MISSES:
        query = {"client_id": logout_client, "post_logout_redirect_uri": uri}
        refused_here(client.get("/oauth/logout?" + urlencode(query)))
        refused_here(client.post("/oauth/logout", data={**query, "confirm": "yes", "csrf_token": token}))
        assert signed_in_as(client) == EMAIL
    # The control: the registered URI, confirmed, signs out and redirects there.
    query = {"client_id": logout_client, "post_logout_redirect_uri": SIGNED_OUT}
    response = client.post("/oauth/logout", data={**query, "confirm": "yes", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == SIGNED_OUT
    assert signed_in_as(client) is None


def test_logout_without_a_client_cannot_name_a_redirect(client, logout_client):
    """RFC 9700 §4.11.2: no client, nothing registered, no redirect."""
    refused_here(client.get("/oauth/logout?" + urlencode({"post_logout_redirect_uri": SIGNED_OUT})))
