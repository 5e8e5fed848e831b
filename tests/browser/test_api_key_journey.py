"""An API key's life in a real browser, against the real server (`authserver serve`) and the
sample API service (`authserver api serve`) as processes: sign up, sign out and in again, generate
a key (shown once), call the API with it, see the request on the usage page, rotate it (both keys
work during the grace period) and revoke the new one (refused once the API's key cache expires).

The API service has its own confidential client_credentials client, to introspect keys and report
usage; one worker, so its counters need no Redis. Its key cache and usage flush are short, so the
test waits little. Elements are found by role, label and visible text, as in test_consent_flow.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from urllib.parse import urlsplit

import pytest
import requests

from ..e2e.conftest import e2e_database_url  # noqa: F401 (fixture: SQLite, or PostgreSQL when asked for)
from ..e2e.processes import ApiService, authserver_env, free_port, new_workspace, running_server
from .conftest import assert_product_stylesheet, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "journey correct horse battery staple"
KEY_NAME = "Reporting server"
WARNING = "Copy and securely store your key now: API keys are shown only once."
KEY_CACHE_SECONDS = 1  # the API's AUTHSERVER_API_KEY_CACHE_SECONDS
USAGE_FLUSH_SECONDS = 0.5  # the API's AUTHSERVER_USAGE_FLUSH_SECONDS
HTTP_TIMEOUT = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory, e2e_database_url):  # noqa: F811
    workspace = new_workspace(tmp_path_factory, e2e_database_url, "api-key-journey")
    workspace.run("db", "upgrade")
    workspace.run("keys", "generate")
    api_client = json.loads(workspace.run("clients", "create", "--name", "Sample API service",
                                          "--grant-type", "client_credentials", "--scope", "read:users"))
    with running_server(workspace) as server:
        server.api_client = (api_client["client_id"], api_client["client_secret"])
        yield server


@pytest.fixture(scope="module")
def api(server, tmp_path_factory):
    client_id, client_secret = server.api_client
    service = ApiService(env=authserver_env(
        AUTHSERVER_ISSUER=server.base_url,
        AUTHSERVER_API_CLIENT_ID=client_id, AUTHSERVER_API_CLIENT_SECRET=client_secret,
        AUTHSERVER_API_KEY_CACHE_SECONDS=str(KEY_CACHE_SECONDS),
        AUTHSERVER_USAGE_FLUSH_SECONDS=str(USAGE_FLUSH_SECONDS),
    ), cwd=tmp_path_factory.mktemp("api-service"), port=free_port(), workers=1)
    service.start()
    try:
        service.wait_until_healthy()
        yield service
    finally:
        service.stop()


def path_is(path: str):
    return lambda url: urlsplit(url).path == path


def call_api(api, key: str) -> requests.Response:
    return requests.get(api.url("/v1/users"), headers={"Authorization": f"Bearer {key}"}, timeout=HTTP_TIMEOUT)


def shown_as(key: str) -> str:
    """How the list shows a key: prefix…last four."""
    return f"{key[:10]}…{key[-4:]}"


def key_item(page, key: str):
    """The list entry of a key, named by the key's name and how it is shown."""
    return page.get_by_role("listitem", name=f"{KEY_NAME} {shown_as(key)}", exact=True)


def read_new_key(page) -> str:
    """The key the page shows once, beside the warning and a working copy button."""
    assert page.get_by_text(WARNING).is_visible()
    key = page.get_by_label("New API key").input_value()
    assert re.fullmatch(r"tdk_[A-Za-z0-9_-]+_[A-Za-z0-9]+", key), key
    copy = page.get_by_role("button", name="Copy")
    copy.click()
    from playwright.sync_api import expect  # here: without Playwright the fixtures skip (or fail under CI)

    expect(page.get_by_role("button", name="Copied")).to_be_visible()  # once the clipboard write resolves
    assert page.evaluate("() => navigator.clipboard.readText()") == key
    return key


def full_page_screenshot(page, name: str) -> None:
    """From the top: a page scrolled to an anchor would show its sticky top bar mid-picture."""
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, name)


def sign_up_and_in_again(page, page_events, server, email: str) -> None:
    page.goto(server.url("/signup"))
    assert_product_stylesheet(page, page_events)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name", exact=True).fill("Grace Hopper")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(path_is("/dashboard"))
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto(server.url("/dashboard"))
    page.wait_for_url(path_is("/login"))  # signed out: the dashboard sends us to sign in

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(path_is("/dashboard"))
    assert email in page.get_by_role("banner").inner_text()


def wait_for_usage_total(page, server, expected: int) -> None:
    """Reload the usage page until its "Last 24 hours" total is `expected` (the API flushes its
    counts every USAGE_FLUSH_SECONDS)."""
    deadline = time.monotonic() + 20 * USAGE_FLUSH_SECONDS + 10
    while True:
        page.goto(server.url("/dashboard/usage"))
        total = page.locator("#usage-last-24-hours").inner_text()
        if total == str(expected):
            return
        assert time.monotonic() < deadline, f"the usage page shows {total} requests in the last 24 hours"
        time.sleep(USAGE_FLUSH_SECONDS)


def test_generate_use_rotate_and_revoke_an_api_key(page, page_events, server, api):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    sign_up_and_in_again(page, page_events, server, f"grace-{secrets.token_hex(4)}@example.com")

    # Generate a key: shown once.
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="API keys").click()
    page.wait_for_url(path_is("/dashboard/api-keys"))
    assert page.get_by_text("You have no API keys yet.").is_visible()
    page.get_by_label("Name", exact=True).fill(KEY_NAME)
    page.get_by_label("read:users").check()
    page.get_by_role("button", name="Generate key").click()
    page.wait_for_url(path_is("/dashboard/api-keys"))
    assert page.get_by_role("heading", name=f"Your new key: {KEY_NAME}").is_visible()
    key = read_new_key(page)
    assert_product_stylesheet(page, page_events)
    full_page_screenshot(page, "api-keys-new-key")

    page.reload()
    assert page.get_by_label("New API key").count() == 0
    assert key not in page.content() and page.get_by_text(WARNING).count() == 0
    entry = key_item(page, key)
    assert KEY_NAME in entry.inner_text() and "never" in entry.inner_text()

    # Use it: the API accepts it, and the request shows on the usage page.
    response = call_api(api, key)
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["type"] == "user"
    wait_for_usage_total(page, server, 1)
    assert KEY_NAME in page.get_by_role("table").inner_text()
    assert_product_stylesheet(page, page_events)
    screenshot(page, "usage")

    # Rotate with 24 hours of grace: both keys work.
    page.goto(server.url("/dashboard/api-keys"))
    old = key_item(page, key)
    old.locator("summary").filter(has_text="Rotate").click()
    assert old.get_by_label("Old key keeps working").input_value() == "86400"
    old.get_by_role("button", name="Rotate key").click()
    page.wait_for_url(path_is("/dashboard/api-keys"))
    assert page.get_by_role("heading", name=f"Your rotated key: {KEY_NAME}").is_visible()
    new_key = read_new_key(page)
    assert new_key != key
    assert [call_api(api, k).status_code for k in (key, new_key)] == [200, 200]

    page.reload()
    assert re.search(r"rotated\s+— works until \d+ \w+ \d{4}, \d\d:\d\d UTC", key_item(page, key).inner_text(), re.I)
    assert f"Replaces {shown_as(key)}" in key_item(page, new_key).inner_text()
    full_page_screenshot(page, "api-keys")

    # Revoke the new key: refused once the API's cache of it has expired.
    new = key_item(page, new_key)
    new.locator("summary").filter(has_text="Revoke").click()
    assert new.get_by_text("This cannot be undone.").is_visible()
    new.get_by_role("button", name="Revoke key").click()
    page.wait_for_url(path_is("/dashboard/api-keys"))
    assert page.get_by_role("status").filter(has_text=f"Revoked “{KEY_NAME}” ({shown_as(new_key)})").is_visible()
    assert key_item(page, new_key).count() == 0

    time.sleep(KEY_CACHE_SECONDS + 0.5)
    refused = call_api(api, new_key)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "INVALID_API_KEY"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert call_api(api, key).status_code == 200  # the old key, in its grace period

    assert page_events.problems() == []
    assert "Traceback" not in server.stderr(), server.stderr()
    assert "Traceback" not in api.stderr(), api.stderr()
