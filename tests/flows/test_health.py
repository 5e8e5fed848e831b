"""`/healthz` (the process answers, whatever its dependencies do) and `/readyz` (the database, the
key store and, when configured, Redis answer; 503 naming what failed, never an error text), and
the deadline that keeps a hung dependency from hanging the probe (authserver/readiness.py)."""

from __future__ import annotations

import shutil
import threading

import pytest

from authserver.app import create_app
from authserver.oauth.keys import KeyStore
from authserver.readiness import Readiness

from ..stores import free_port, require_redis

SECRET_PASSWORD = "hunter2-db-password"


def ready(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, response.get_json()


def test_ready_when_the_database_and_the_keys_answer(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert ready(client) == (200, {"status": "ready", "checks": {"database": "ok", "keys": "ok"}})


@pytest.mark.parametrize("database_url", [
    "sqlite:////nonexistent-directory/authserver.db",
    f"postgresql+psycopg://authserver:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/authserver",
])
def test_an_unreachable_database_is_unready_but_alive_and_the_answer_names_no_url(settings_overrides, database_url):
    client = create_app({**settings_overrides, "database_url": database_url}).test_client()
    assert client.get("/healthz").status_code == 200
    status, body = ready(client)
    assert (status, body) == (503, {"status": "unavailable", "checks": {"database": "failed", "keys": "ok"}})
    text = client.get("/readyz").get_data(as_text=True)
    assert SECRET_PASSWORD not in text and "nonexistent" not in text and "127.0.0.1" not in text


def test_a_missing_key_manifest_is_unready(settings_overrides, keys_dir, tmp_path):
    own_keys = tmp_path / "keys"
    shutil.copytree(keys_dir, own_keys)
    client = create_app({**settings_overrides, "keys_dir": str(own_keys)}).test_client()
    assert ready(client)[0] == 200
    KeyStore(own_keys).manifest_path.unlink()
    assert ready(client) == (503, {"status": "unavailable", "checks": {"database": "ok", "keys": "failed"}})


def test_redis_is_checked_when_configured(settings_overrides):
    reachable = create_app({**settings_overrides, "redis_url": require_redis()}).test_client()
    assert ready(reachable) == (200, {"status": "ready", "checks": {"database": "ok", "keys": "ok", "redis": "ok"}})

    dead = create_app({**settings_overrides,
                       "redis_url": f"redis://:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/0"}).test_client()
    status, body = ready(dead)
    assert (status, body["checks"]) == (503, {"database": "ok", "keys": "ok", "redis": "failed"})
    assert SECRET_PASSWORD not in dead.get("/readyz").get_data(as_text=True)


def test_a_hung_check_fails_at_the_deadline_and_is_not_started_again_while_it_hangs():
    release, calls = threading.Event(), []

    def hung() -> bool:
        calls.append(1)
        return release.wait(30)

    readiness = Readiness({"hung": hung, "fine": lambda: True}, deadline=0.2)
    try:
        assert readiness.run() == {"hung": False, "fine": True}
        assert readiness.run() == {"hung": False, "fine": True}
        assert len(calls) == 1  # the second probe did not start another thread on the hung dependency
    finally:
        release.set()


def test_a_check_that_raises_or_says_false_fails():
    def broken() -> bool:
        raise OSError("connection to postgresql://user:pw@db failed")

    assert Readiness({"broken": broken, "no": lambda: False}).run() == {"broken": False, "no": False}
