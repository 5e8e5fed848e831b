"""Real databases for tests: a temporary SQLite file, or a fresh PostgreSQL database per run.

Set AUTHSERVER_TEST_DATABASE=postgres to run the suite on PostgreSQL (AUTHSERVER_TEST_POSTGRES_URL
names the server, default the local one). Under CI=true an unreachable PostgreSQL fails the run;
elsewhere the PostgreSQL-only tests skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def wants_postgres() -> bool:
    return os.environ.get("AUTHSERVER_TEST_DATABASE", "sqlite") == "postgres"


def postgres_server_url() -> str:
    return os.environ.get("AUTHSERVER_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


def _admin_engine():
    return create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")


def create_postgres_database() -> str:
    """Create a fresh, uniquely named database; returns its URL. Fails or skips if unreachable."""
    name = f"authserver_test_{secrets.token_hex(6)}"
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        message = f"PostgreSQL at {make_url(postgres_server_url()).render_as_string(hide_password=True)} is unreachable: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return make_url(postgres_server_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def fresh_database(tmp_path_factory, name: str) -> Iterator[str]:
    """The URL of a fresh, empty database for one group of end-to-end tests: an SQLite file in a
    new temporary folder `name`, or a new PostgreSQL database (dropped afterwards) when asked for."""
    if wants_postgres():
        url = create_postgres_database()
        try:
            yield url
        finally:
            drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp(name) / 'authserver.db'}"
