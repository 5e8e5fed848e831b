"""The 503 mapping in-process: the app pointed at a PostgreSQL address where nothing listens
answers every surface with its own 503 and Retry-After, and logs one line without SQL."""

from __future__ import annotations

import logging

import pytest

from authserver.app import create_app
from authserver.storage.db import EXTENSION_KEY, Database

from ..helpers import login
from ..stores import free_port

MESSAGE = "The service is temporarily unavailable. Try again shortly."


@pytest.fixture
def client(settings_overrides):
    # Nothing listens there: every connection attempt is refused at once.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/authserver"
    return create_app({**settings_overrides, "database_url": url}).test_client()


def test_oauth_endpoints_answer_temporarily_unavailable(client, caplog):
    with caplog.at_level(logging.WARNING, logger="authserver.errors"):
        response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers={"Authorization": "Basic Y2xpZW50OnNlY3JldA=="})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {"error": "temporarily_unavailable", "error_description": MESSAGE}
    [line] = [record.getMessage() for record in caplog.records if record.name == "authserver.errors"]
    assert line.startswith("database unavailable on POST /oauth/token: OperationalError: ")
    assert "SELECT" not in line and "\n" not in line


def test_v1_answers_the_envelope(client):
    response = client.post("/v1/auth/refresh", json={"refresh_token": "some-token"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json == {"error": {"code": "SERVICE_UNAVAILABLE", "message": MESSAGE, "status": 503}}


def test_browser_pages_answer_an_html_page(client):
    response = client.get("/oauth/authorize?response_type=code&client_id=some-client")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.mimetype == "text/html"
    assert "Temporarily unavailable" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_signed_in_page_answers_the_html_page_without_loading_the_user(app, make_user):
    """The error page must not need the database either: rendering it with the signed-in user's
    context would query the database again and turn the 503 into a 500."""
    browser = app.test_client()
    login(browser, make_user().email)
    # From here on the app's database is an address where nothing listens.
    app.extensions[EXTENSION_KEY] = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/authserver")
    response = browser.get("/dashboard")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Temporarily unavailable" in response.get_data(as_text=True)
