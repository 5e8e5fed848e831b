"""Fixtures: a migrated database per session, one signing key per session, an app per test
(its tables emptied afterwards), and factories for accounts and clients."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from authserver.app import create_app
from authserver.oauth.keys import KeyStore
from authserver.storage.migrate import upgrade
from authserver.storage.models import Base

from .databases import create_postgres_database, drop_postgres_database, wants_postgres

ISSUER = "http://localhost"
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://app.example.com/callback"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if wants_postgres():
        url = create_postgres_database()
        upgrade(url)
        yield url
        drop_postgres_database(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    KeyStore(directory).ensure_active()
    return directory


@pytest.fixture
def settings_overrides(database_url, keys_dir, tmp_path) -> dict:
    return {
        "issuer": ISSUER,
        "database_url": database_url,
        "keys_dir": str(keys_dir),
        "instance_dir": str(tmp_path / "instance"),
        "secret_key": "test-secret-key-" + "x" * 32,
    }


@pytest.fixture
def app(settings_overrides, database_url):
    app = create_app(settings_overrides)
    yield app
    _empty_tables(database_url)


def _empty_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    from authserver.storage.users import create_user

    def factory(email=None, name="Ada Lovelace", password=PASSWORD, plan="free"):
        email = email or f"user-{secrets.token_hex(4)}@example.com"
        with app.app_context():
            return create_user(email, name, password, plan)

    return factory


@pytest.fixture
def make_client(app):
    """Register a client; returns (row, secret)."""
    from authserver.storage.clients import create_client

    def factory(**overrides):
        fields = dict(
            name="Example App",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scope="openid profile read:users write:data",
            public=False,
        )
        fields.update(overrides)
        with app.app_context():
            return create_client(**fields)

    return factory


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture
def audit_lines():
    """The audit log's events while the test runs, as dicts (the `authserver.audit` logger does not
    propagate, so caplog cannot see it)."""
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    handler = Collect()
    logger = logging.getLogger("authserver.audit")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(previous)
