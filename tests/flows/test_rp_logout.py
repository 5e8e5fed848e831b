"""RP-Initiated Logout: exact post-logout redirect URIs, hint-bound immediate logout, else confirmation."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from ..helpers import csrf_token, redirect_params, signed_in_as
from .tokens import user_tokens

SIGNED_OUT = "https://app.example.com/signed-out"


@pytest.fixture
def signed_in(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(post_logout_redirect_uris=[SIGNED_OUT])
    body = user_tokens(client, row.client_id, secret, "ada@example.com", scope="openid")
    return row.client_id, body["id_token"]


def is_signed_in(client) -> bool:
    return signed_in_as(client) is not None


def test_hint_for_this_session_logs_out_and_redirects_with_state(client, signed_in):
    _, id_token = signed_in
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT, "state": "bye"})
    response = client.get(f"/oauth/logout?{query}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(SIGNED_OUT + "?")
    assert redirect_params(response) == {"state": "bye"}
    assert not is_signed_in(client)


def test_without_hint_the_user_confirms_first(client, signed_in):
    client_id, _ = signed_in
    query = urlencode({"client_id": client_id, "post_logout_redirect_uri": SIGNED_OUT})
    page = client.get(f"/oauth/logout?{query}")
    assert page.status_code == 200 and is_signed_in(client)
    html = page.get_data(as_text=True)
    response = client.post("/oauth/logout", data={"client_id": client_id, "post_logout_redirect_uri": SIGNED_OUT,
                                                  "confirm": "yes", "csrf_token": csrf_token(html)})
    assert response.status_code == 302 and response.headers["Location"] == SIGNED_OUT
    assert not is_signed_in(client)


def test_confirmation_needs_the_csrf_token(client, signed_in):
    client_id, _ = signed_in
    response = client.post("/oauth/logout", data={"client_id": client_id, "confirm": "yes"})
    assert response.status_code == 400
    assert is_signed_in(client)


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": SIGNED_OUT},  # no client named
        {"post_logout_redirect_uri": SIGNED_OUT + "/"},  # one character off (client from the hint)
        {"post_logout_redirect_uri": "https://evil.example/"},
        {"id_token_hint": "a.b.c"},
        {"id_token_hint": "tampered"},
    ],
    ids=["no-client", "trailing-slash", "foreign", "garbage-hint", "tampered-hint"],
)
def test_bad_requests_get_an_error_page_and_no_redirect(client, signed_in, params):
    client_id, id_token = signed_in
    if params.get("id_token_hint") == "tampered":
        params = {"id_token_hint": id_token[:-6] + "AAAAAA"}
    elif "post_logout_redirect_uri" in params and params["post_logout_redirect_uri"] != SIGNED_OUT:
        params = {**params, "id_token_hint": id_token}
    response = client.get(f"/oauth/logout?{urlencode(params)}")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert is_signed_in(client)


def test_signed_out_page_without_redirect(client, signed_in):
    _, id_token = signed_in
    response = client.get(f"/oauth/logout?{urlencode({'id_token_hint': id_token})}")
    assert response.status_code == 200
    assert "You are signed out" in response.get_data(as_text=True)
