"""Two redemptions of one credential at once: exactly one wins (its conditional UPDATE), and the
other, a replay, revokes what the winner issued. Each request is held before minting until both
have read the credential as unused, so every run is the worst case of the race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from authserver.extensions import SERVER_KEY
from authserver.storage import access_tokens

from ..conftest import REDIRECT_URI, pkce_pair
from ..helpers import authorize_query, authorize_url, redirect_params
from .token_world import claims_of, registered, token_request, world  # noqa: F401 (fixtures)


@pytest.fixture
def hold(world, monkeypatch):
    """Once called, token requests wait before minting until two of them have read their credential."""
    def install():
        tokens = world.app.extensions[SERVER_KEY].tokens
        barrier = threading.Barrier(2, timeout=30)
        issue = tokens.issue

        def issue_once_both_have_read(*args, **kwargs):
            barrier.wait()
            return issue(*args, **kwargs)

        monkeypatch.setattr(tokens, "issue", issue_once_both_have_read)

    return install


def at_once(world, sender, params):
    """The same token request twice, concurrently, each with its own connection and session."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(token_request, world.app.test_client(), sender, params) for _ in range(2)]
    responses = sorted((future.result() for future in futures), key=lambda response: response.status_code)
    assert [response.status_code for response in responses] == [200, 400], [r.get_json() for r in responses]
    winner, loser = responses
    assert loser.get_json()["error"] == "invalid_grant"
    return winner.get_json()


def assert_revoked(world, registered, tokens):
    refreshed = token_request(world.api, registered.main,
                              {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    with world.app.app_context():
        assert access_tokens.is_denied(claims_of(tokens["access_token"])["jti"])


def test_one_of_two_concurrent_code_redemptions_wins_and_its_tokens_are_revoked(world, registered, hold):
    verifier, challenge = pkce_pair()
    response = world.browser.get(authorize_url(authorize_query(registered.main.client_id, challenge)))
    code = redirect_params(response)["code"]
    hold()
    winner = at_once(world, registered.main, {"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    # RFC 6749 §4.1.2: the code was used twice, so what it issued is revoked.
    assert_revoked(world, registered, winner)


def test_one_of_two_concurrent_refreshes_wins_and_the_family_is_revoked(world, registered, hold):
    first = world.user_tokens(registered.main)
    hold()
    winner = at_once(world, registered.main, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    # A rotated token presented twice: the whole family goes, the winner's new pair with it.
    assert_revoked(world, registered, winner)
