"""The serving worker forgets its settings' environment once its app is built (granian copies the
environment into every request's WSGI environ)."""

import os

from authserver.wsgi_server import load_app_then_forget_settings


def test_worker_drops_authserver_variables_after_building_the_app(monkeypatch):
    for name, value in list(os.environ.items()):
        if name.startswith("AUTHSERVER_"):
            monkeypatch.setenv(name, value)  # restored afterwards (e.g. AUTHSERVER_TEST_DATABASE)
    monkeypatch.setenv("AUTHSERVER_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", "postgresql+psycopg://app:hunter2@127.0.0.1/auth")
    monkeypatch.setenv("UNRELATED_SETTING", "kept")
    seen = {}

    def load_app():
        seen.update((name, value) for name, value in os.environ.items() if name.startswith("AUTHSERVER_"))
        return "the app"

    assert load_app_then_forget_settings(load_app) == "the app"
    assert seen["AUTHSERVER_SECRET_KEY"] == "s" * 40  # the app read its settings first
    assert not [name for name in os.environ if name.startswith("AUTHSERVER_")]
    assert os.environ["UNRELATED_SETTING"] == "kept"
