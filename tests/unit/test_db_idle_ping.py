"""Pooled PostgreSQL connections are tested before use only after sitting idle
(storage/db.py): one that died meanwhile (a database restart) is replaced, not handed out."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from authserver.storage import db

from ..databases import create_postgres_database, drop_postgres_database, postgres_server_url


@pytest.fixture
def engine():
    url = create_postgres_database()
    engine = db.make_engine(url)
    yield engine
    engine.dispose()
    drop_postgres_database(url)


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(pid: int) -> None:
    admin = create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_an_idle_connection_that_died_is_replaced(engine, monkeypatch):
    dead = backend_pid(engine)
    terminate(dead)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0)  # the connection counts as idle
    assert backend_pid(engine) != dead


def test_a_connection_in_steady_use_is_not_pinged(engine):
    """The other side of the trade: no round trip for a connection just returned to the pool,
    so a backend that died in that instant is found by the request itself."""
    terminate(backend_pid(engine))
    with pytest.raises(OperationalError):
        backend_pid(engine)
    assert backend_pid(engine)  # the failure invalidated the pool: the next request is served
