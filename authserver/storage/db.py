"""Engine and per-request session: one scoped session per thread, removed at app-context teardown."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

EXTENSION_KEY = "authserver.db"


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = scoped_session(sessionmaker(self.engine, expire_on_commit=False))

    def init_app(self, app) -> None:
        app.extensions[EXTENSION_KEY] = self
        app.teardown_appcontext(lambda _exc: self.sessions.remove())


def session() -> Session:
    """The current request's session."""
    return current_app.extensions[EXTENSION_KEY].sessions()
