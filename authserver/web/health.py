"""`/healthz`: the process answers (200, nothing else is touched: a liveness probe must not fail
because a dependency did, or every instance gets restarted at once). `/readyz`: the database, the
key store and, when AUTHSERVER_REDIS_URL is set, Redis answer (200), or 503 naming the checks that
failed (readiness.py: all at once, within a deadline, never an error text)."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app
from sqlalchemy import text

from ..oauth.keys import KeyStore
from ..readiness import Readiness
from ..settings import Settings
from ..storage.db import EXTENSION_KEY as DATABASE_KEY

bp = Blueprint("health", __name__)

EXTENSION_KEY = "authserver.readiness"
REDIS_TIMEOUT_SECONDS = 0.5


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    return current_app.extensions[EXTENSION_KEY].response()


def init_app(app: Flask, settings: Settings, store: KeyStore) -> None:
    """The checks of this app (after its Database)."""
    engine = app.extensions[DATABASE_KEY].engine

    def database() -> bool:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    def keys() -> bool:
        return store.version() is not None  # the manifest is there and readable (one stat)

    checks = {"database": database, "keys": keys}
    if settings.redis_url:
        checks["redis"] = _redis_ping(settings.redis_url)
    app.extensions[EXTENSION_KEY] = Readiness(checks)


def _redis_ping(url: str):
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = Redis.from_url(url.replace("redis+unix://", "unix://", 1), socket_timeout=REDIS_TIMEOUT_SECONDS,
                            socket_connect_timeout=REDIS_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
    return lambda: client.ping() is True
