"""Fixtures: the real authorization server serving discovery and its JWKS over HTTP (one per
module, and a fresh one for tests that rotate its keys or stop it), a settable clock, and
verifiers built the way a resource service builds them."""

from __future__ import annotations

import pytest

from authserver.resource import JWKSCache, TokenVerifier

from .live import AUDIENCE, Clock, LiveAuthServer

COOLDOWN = 30
MIN_MAX_AGE = 60
MAX_MAX_AGE = 3600


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    live = LiveAuthServer.start(tmp_path_factory.mktemp("resource-server"), database_url)
    yield live
    live.close()  # stops HTTP and empties the tables, those of `fresh_server` too


@pytest.fixture
def fresh_server(server, tmp_path):
    """A server of its own (keys, port), for tests that rotate keys or stop it. Depends on `server`
    so that the module's teardown empties the tables once both are done."""
    live = LiveAuthServer.start(tmp_path, server.database_url)
    yield live
    live.stop_http()


@pytest.fixture
def clock():
    return Clock()


def make_verifier(server: LiveAuthServer, clock: Clock | None = None, **cache_options) -> TokenVerifier:
    options = dict(min_max_age=MIN_MAX_AGE, max_max_age=MAX_MAX_AGE, refresh_cooldown=COOLDOWN)
    options.update(cache_options)
    if clock is not None:
        options["clock"] = clock
    return TokenVerifier(server.issuer, AUDIENCE, keys=JWKSCache(server.issuer, **options))


@pytest.fixture
def verifier(server, clock):
    return make_verifier(server, clock)
