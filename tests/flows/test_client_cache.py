"""Clients cached per worker (storage/client_cache.py): a change made elsewhere (another worker,
another instance) is seen within AUTHSERVER_CLIENT_CACHE_SECONDS, a change made here at once,
and only clients that exist are cached."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import update

from authserver import credentials
from authserver.storage import clients
from authserver.storage.client_cache import ClientCache
from authserver.storage.db import session
from authserver.storage.models import Client


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_status(client, client_id: str, secret: str) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "read:users"},
                           headers={"Authorization": f"Basic {basic}"})
    return response.status_code


def changed_elsewhere(app, client_id: str, **values) -> None:
    """What another worker's write looks like to this one: the row changes, this cache is not told."""
    with app.app_context():
        session().execute(update(Client).where(Client.client_id == client_id).values(**values))
        session().commit()


@pytest.fixture
def clock(app) -> Clock:
    clock = Clock()
    app.extensions[clients.CACHE_KEY] = ClientCache(5, clock)
    return clock


def test_a_secret_changed_elsewhere_works_here_until_the_cache_time_has_passed(app, client, make_client, clock):
    row, old = make_client()
    assert token_status(client, row.client_id, old) == 200  # now cached
    changed_elsewhere(app, row.client_id, secret_digest=credentials.digest("tds_new"))

    clock.now += 4.9
    assert token_status(client, row.client_id, old) == 200
    clock.now += 0.2
    assert token_status(client, row.client_id, old) == 401
    assert token_status(client, row.client_id, "tds_new") == 200


def test_a_client_deactivated_elsewhere_is_refused_once_the_cache_time_has_passed(app, client, make_client, clock):
    row, secret = make_client()
    assert token_status(client, row.client_id, secret) == 200
    changed_elsewhere(app, row.client_id, is_active=False)
    clock.now += 5.1
    assert token_status(client, row.client_id, secret) == 401


def test_with_the_cache_off_every_request_reads_the_client(app, client, make_client):
    app.extensions[clients.CACHE_KEY] = ClientCache(0)
    row, old = make_client()
    assert token_status(client, row.client_id, old) == 200
    changed_elsewhere(app, row.client_id, secret_digest=credentials.digest("tds_new"))
    assert token_status(client, row.client_id, old) == 401


def test_unknown_clients_are_not_cached(app, client, clock):
    cache = app.extensions[clients.CACHE_KEY]
    for number in range(20):
        assert token_status(client, f"client_{number:024x}", "tds_guess") == 401
    assert cache.get("client_" + "0" * 24) is None and not cache._entries


def test_the_cache_is_bounded():
    cache = ClientCache(60)
    for number in range(10_001):
        cache.put(str(number), number)
    assert len(cache._entries) <= 10_000
    assert cache.get("10000") == 10_000


def test_a_lookup_leaves_the_requests_own_copy_of_the_client_attached(app, client, make_user, make_client):
    """A request that holds a client (to change it) and also looks it up keeps its changes."""
    owner = make_user()
    row, old = make_client(owner_id=owner.id)
    with app.app_context():
        owned = clients.find_owned(owner.id, row.client_id)
        assert clients.find_active(row.client_id) is not owned
        new = clients.rotate_secret(owned)
    assert token_status(client, row.client_id, old) == 401
    assert token_status(client, row.client_id, new) == 200
