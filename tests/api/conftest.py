"""Fixtures: the real authorization server over HTTP in a thread (tests/resource/live.py), and a
fresh API app per test (its own in-memory rate-limit counters and key cache)."""

from __future__ import annotations

import pytest

from authserver.api import ApiConfig, create_api_app
from authserver.api.app import EXTENSION

from ..resource.live import AUDIENCE, LiveAuthServer


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    live = LiveAuthServer.start(tmp_path_factory.mktemp("api-server"), database_url)
    yield live
    live.close()


def make_api(issuer: str):
    return create_api_app(ApiConfig(issuer=issuer, audience=AUDIENCE))


@pytest.fixture
def api(server):
    app = make_api(server.issuer)
    yield app
    app.extensions[EXTENSION].limiter.close()


@pytest.fixture
def client(api):
    return api.test_client()
