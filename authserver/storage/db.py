"""Engine and per-request session: one scoped session per thread, removed at app-context teardown."""

from __future__ import annotations

import logging
import time

from flask import current_app
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

log = logging.getLogger(__name__)

EXTENSION_KEY = "authserver.db"
# A pooled connection idle longer than this is tested before use (see _ping_when_idle).
PING_AFTER_IDLE_SECONDS = 10
# PostgreSQL: seconds to wait for a new connection (a host that drops packets would otherwise
# hold a request, and /healthz, for the OS's TCP timeout of minutes), and for a free pooled one.
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 10


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
    libpq = make_url(url).get_backend_name() == "postgresql"
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=3600, pool_timeout=POOL_TIMEOUT_SECONDS,
                           connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS} if libpq else {})
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use only if it sat idle a while (a database restart or a
    dropped idle connection), not on every checkout as `pool_pre_ping` would: under load that
    was one more round trip per request. A connection that fails here is replaced (the pool
    retries); one that breaks while in use invalidates the pool, so after an outage each worker
    fails at most the requests it had in flight."""

    @event.listens_for(engine, "checkin")
    def _remember_checkin(_dbapi_connection, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure: this connection is not usable
            raise DisconnectionError() from exc


class Database:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = scoped_session(sessionmaker(self.engine, expire_on_commit=False))

    def init_app(self, app) -> None:
        app.extensions[EXTENSION_KEY] = self
        app.teardown_appcontext(lambda _exc: self.remove_session())

    def remove_session(self) -> None:
        """Close this thread's session (rolling back what was not committed) and forget it. Never
        raises: when the database went away meanwhile, the rollback fails, but the connection is
        invalidated anyway, and a response already built must not become a 500 afterwards."""
        try:
            self.sessions.remove()
        except Exception as exc:  # noqa: BLE001 - see above; the next session starts afresh
            self.sessions.registry.clear()  # remove() raised before forgetting it
            log.warning("database session closed with an error: %s", (str(getattr(exc, "orig", exc)).splitlines() or [""])[0])


def session() -> Session:
    """The current request's session."""
    return current_app.extensions[EXTENSION_KEY].sessions()


def discard_session() -> None:
    """Drop the current request's session after a database failure, so that nothing later in the
    request (an error page, the teardown) uses its broken transaction. Never raises."""
    current_app.extensions[EXTENSION_KEY].remove_session()


def separate_session() -> Session:
    """A session of its own, outside the request's (close it): what it loads is detached when it
    closes, so it can be shared without tying the request's session to it."""
    return current_app.extensions[EXTENSION_KEY].sessions.session_factory()
