"""Two redemptions of one credential at once: exactly one wins (its conditional UPDATE). For a code,
the other is a replay and revokes what the winner issued; for a refresh token, the other gets the
winner's response within the grace window, and revokes the family without one. Each request is
held before minting until both have read the credential as unused, so every run is the worst case
of the race. And a family revoked while one of its tokens is being rotated loses the successor too."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, select, text

from authserver.credentials import digest
from authserver.extensions import SERVER_KEY
from authserver.oauth import grants
from authserver.storage import access_tokens
from authserver.storage.models import RefreshToken

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


@pytest.fixture
def strict(world, monkeypatch):
    """No grace window (AUTHSERVER_REFRESH_GRACE_SECONDS=0) for this test."""
    server = world.app.extensions[SERVER_KEY]
    monkeypatch.setattr(server, "settings", dataclasses.replace(server.settings, refresh_grace_seconds=0))


def twice_at_once(world, sender, params):
    """The same token request twice, concurrently, each with its own connection and session."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(token_request, world.app.test_client(), sender, params) for _ in range(2)]
    return sorted((future.result() for future in futures), key=lambda response: response.status_code)


def at_once(world, sender, params):
    """The same token request twice at once: one wins, the other is refused; the winner's body."""
    responses = twice_at_once(world, sender, params)
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


def test_two_concurrent_refreshes_get_the_same_pair_issued_once(world, registered, hold):
    first = world.user_tokens(registered.main)
    hold()
    responses = twice_at_once(world, registered.main,
                              {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert [response.status_code for response in responses] == [200, 200], [r.get_json() for r in responses]
    assert responses[0].get_json() == responses[1].get_json()
    pair = responses[0].get_json()
    engine = create_engine(world.database_url)
    with engine.connect() as conn:
        family = conn.scalar(select(RefreshToken.family).where(RefreshToken.digest == digest(first["refresh_token"])))
        rows = conn.execute(select(RefreshToken.digest, RefreshToken.revoked_at)
                            .where(RefreshToken.family == family)).all()
    engine.dispose()
    # One successor, and the pair is live: nothing revoked, the access token not denied.
    assert sorted(rows) == sorted([(digest(first["refresh_token"]), None), (digest(pair["refresh_token"]), None)])
    with world.app.app_context():
        assert not access_tokens.is_denied(claims_of(pair["access_token"])["jti"])


def test_without_grace_one_of_two_concurrent_refreshes_wins_and_the_family_is_revoked(world, registered, hold,
                                                                                      strict):
    first = world.user_tokens(registered.main)
    hold()
    winner = at_once(world, registered.main, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    # A rotated token presented twice: the whole family goes, the winner's new pair with it.
    assert_revoked(world, registered, winner)


def test_a_family_revoked_during_a_rotation_loses_the_successor_too(world, registered, monkeypatch):
    """The rotation has claimed its token but not committed when the family is revoked: on PostgreSQL
    the revocation waits for the claimed row, and must then also find the successor inserted by a
    transaction that committed after its UPDATE began."""
    first = world.user_tokens(registered.main)
    claimed, go_on = threading.Event(), threading.Event()
    claim = grants.refresh_tokens.claim

    def claim_then_wait(*args, **kwargs):
        result = claim(*args, **kwargs)
        claimed.set()
        assert go_on.wait(30)
        return result

    monkeypatch.setattr(grants.refresh_tokens, "claim", claim_then_wait)
    with ThreadPoolExecutor(2) as pool:
        rotation = pool.submit(token_request, world.app.test_client(), registered.main,
                               {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
        assert claimed.wait(30)
        revocation = pool.submit(world.app.test_client().post, "/oauth/revoke",
                                 data={"token": first["refresh_token"]}, auth=registered.main.basic)
        wait_until_blocked(world.database_url)
        go_on.set()
        rotated, revoked = rotation.result(), revocation.result()
    assert rotated.status_code == 200, rotated.get_json()
    assert revoked.status_code == 200
    assert_revoked(world, registered, rotated.get_json())


def wait_until_blocked(database_url: str) -> None:
    """Until another connection waits for a row lock (PostgreSQL). SQLite has one writer at a time:
    the revocation cannot write before the rotation commits, however the two interleave."""
    if not database_url.startswith("postgresql"):
        time.sleep(0.3)
        return
    engine = create_engine(database_url)
    deadline = time.monotonic() + 30
    try:
        with engine.connect() as conn:
            while not conn.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND wait_event_type = 'Lock'")):
                assert time.monotonic() < deadline, "the revocation never waited for the rotation"
                time.sleep(0.02)
    finally:
        engine.dispose()
