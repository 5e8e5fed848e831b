"""Token endpoint races over real HTTP, against `authserver serve` with two workers: one code
redeemed by 20 requests at once, one refresh token rotated by 20 requests at once, a retry within
the grace window and a replay after it."""

from __future__ import annotations

import time
import pytest
import requests
from sqlalchemy import func, select

from authserver.credentials import digest
from authserver.storage.models import RefreshToken

from .browser import authorization_code, tokens
from .concurrently import at_once
from .conftest import serving

pytestmark = pytest.mark.e2e

CONCURRENT = 20
SHORT_GRACE = 1  # seconds, for the server whose window the test waits out
TOKENS = ("access_token", "refresh_token", "id_token")


@pytest.fixture(scope="module")
def server(deployment):
    """AUTHSERVER_REFRESH_GRACE_SECONDS at its default (10 s)."""
    with serving(deployment) as server:
        yield server


@pytest.fixture(scope="module")
def short_grace_server(deployment):
    """The same deployment served with a grace window short enough to wait out."""
    with serving(deployment, AUTHSERVER_REFRESH_GRACE_SECONDS=str(SHORT_GRACE)) as server:
        yield server


def token_request(server, client, session: requests.Session, params: dict) -> requests.Response:
    return session.post(server.url("/oauth/token"), data=params, auth=client, timeout=60)


def refresh(server, client, refresh_token: str, session=requests) -> requests.Response:
    return token_request(server, client, session, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def assert_invalid_grant(response: requests.Response) -> None:
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant"), response.text


def introspected(server, client, token: str) -> dict:
    response = requests.post(server.url("/oauth/introspect"), data={"token": token}, auth=client, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def family_of(database, refresh_token: str) -> list:
    with database.connect() as conn:
        family = conn.scalar(select(RefreshToken.family).where(RefreshToken.digest == digest(refresh_token)))
        return conn.execute(select(RefreshToken.digest, RefreshToken.used_at, RefreshToken.revoked_at)
                            .where(RefreshToken.family == family).order_by(RefreshToken.id)).all()


def test_a_code_redeemed_by_20_requests_at_once_succeeds_once_and_its_tokens_are_revoked(server, deployment):
    params = authorization_code(server, deployment.app[0])
    responses = at_once(CONCURRENT, lambda session, _: token_request(server, deployment.app, session, params))

    assert sorted(r.status_code for r in responses) == [200] + [400] * (CONCURRENT - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert_invalid_grant(response)
    [winner] = [r.json() for r in responses if r.status_code == 200]
    # RFC 6749 §4.1.2: the code was used more than once, so what it issued is revoked.
    assert_invalid_grant(refresh(server, deployment.app, winner["refresh_token"]))
    assert introspected(server, deployment.app, winner["access_token"]) == {"active": False}


def test_a_refresh_token_rotated_by_20_requests_at_once_gets_one_pair(server, deployment, database):
    first = tokens(server, deployment.app)
    responses = at_once(CONCURRENT, lambda session, _: refresh(server, deployment.app, first["refresh_token"],
                                                               session))

    assert [r.status_code for r in responses] == [200] * CONCURRENT, [r.text for r in responses]
    pairs = {tuple(r.json()[name] for name in TOKENS) for r in responses}
    assert len(pairs) == 1, "every request got the same access, refresh and ID token"
    pair = responses[0].json()
    # Issued once: the presented token and exactly one successor, both live.
    rows = family_of(database, first["refresh_token"])
    assert [(row.digest, row.revoked_at) for row in rows] == [
        (digest(first["refresh_token"]), None), (digest(pair["refresh_token"]), None)]
    assert introspected(server, deployment.app, pair["access_token"])["active"] is True

    # A client that lost the response retries within the window: the same pair again.
    retried = refresh(server, deployment.app, first["refresh_token"])
    assert retried.status_code == 200, retried.text
    assert {name: retried.json()[name] for name in TOKENS} == {name: pair[name] for name in TOKENS}
    with database.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RefreshToken)
                           .where(RefreshToken.family == select(RefreshToken.family)
                                  .where(RefreshToken.digest == digest(pair["refresh_token"])).scalar_subquery())) == 2

    # And the successor rotates as usual.
    assert refresh(server, deployment.app, pair["refresh_token"]).status_code == 200


def test_a_replay_after_the_window_revokes_the_family(short_grace_server, deployment, database):
    server = short_grace_server
    first = tokens(server, deployment.app)
    rotated = refresh(server, deployment.app, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    time.sleep(SHORT_GRACE + 1.1)  # the window is over (used_at is stored in whole seconds)

    assert_invalid_grant(refresh(server, deployment.app, first["refresh_token"]))
    assert all(row.revoked_at is not None for row in family_of(database, first["refresh_token"]))
    assert_invalid_grant(refresh(server, deployment.app, rotated.json()["refresh_token"]))
    assert introspected(server, deployment.app, rotated.json()["access_token"]) == {"active": False}
    assert '"event":"refresh_token_reuse_detected"' in server.stderr()
    assert first["refresh_token"] not in server.stderr()
