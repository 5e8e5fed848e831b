"""Authorized apps: the consents an account gave, and withdrawing one, which revokes what the app
holds for the account (refresh tokens and the access tokens issued with them)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from authserver.storage import consents, users
from authserver.storage.models import User

from ..conftest import PASSWORD, pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, login
from .stored_state import unchanged
from .token_world import post, registered, world  # noqa: F401 (fixtures)


@pytest.fixture
def other_browser(world):
    """A browser signed in as another account of the same server."""
    with world.app.app_context():
        other = users.create_user("grace@example.com", "Grace Hopper", PASSWORD)
    browser = world.app.test_client()
    assert login(browser, other.email).status_code == 302
    yield browser
    world.execute(delete(User).where(User.id == other.id))


def active(w, resource, token: str) -> bool:
    response = post(w.api, "/oauth/introspect", resource, {"token": token})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["active"]


def test_the_account_lists_the_apps_it_authorized(world, registered):
    with world.app.app_context():
        listed = {client.client_id: set(consent.scope.split()) for consent, client in consents.authorized_apps(world.user_id)}
    assert registered.main.client_id in listed and registered.public.client_id in listed
    assert listed[registered.main.client_id] == {"openid", "profile", "read:users", "write:data"}


def test_withdrawing_revokes_the_apps_tokens_for_the_account_and_asks_again(world, registered):
    app = world.register(name="Withdrawn App")
    first = world.user_tokens(app)
    second = world.rotate(app, first["refresh_token"])
    kept = world.user_tokens(registered.other)  # another app of the same account keeps its access
    with world.app.app_context():
        assert consents.withdraw(world.user_id, app.client_id) is True
        assert consents.withdraw(world.user_id, app.client_id) is False  # nothing left to withdraw
        assert app.client_id not in {client.client_id for _, client in consents.authorized_apps(world.user_id)}

    resource = registered.resource
    assert not active(world, resource, second["access_token"]) and not active(world, resource, first["access_token"])
    refreshed = post(world.api, "/oauth/token", app, {"grant_type": "refresh_token",
                                                      "refresh_token": second["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    assert active(world, resource, kept["access_token"])
    assert world.rotate(registered.other, kept["refresh_token"])["access_token"]

    # The consent is gone: the next authorization request shows the consent page again.
    response = world.browser.get(authorize_url(authorize_query(app.client_id, pkce_pair()[1])))
    assert response.status_code == 200 and "Withdrawn App" in response.get_data(as_text=True)


def test_withdrawing_an_unknown_app_changes_nothing(world):
    with world.app.app_context():
        before = consents.authorized_apps(world.user_id)
        assert consents.withdraw(world.user_id, "client_does_not_exist") is False
        assert [c.id for c, _ in consents.authorized_apps(world.user_id)] == [c.id for c, _ in before]


# -- the page -----------------------------------------------------------------------------------

def test_the_page_lists_the_apps_and_removes_one(world, registered):
    app = world.register(name="<b>Page App</b>")
    tokens = world.user_tokens(app)
    page = world.browser.get("/dashboard/authorized-apps")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "&lt;b&gt;Page App&lt;/b&gt;" in html and "<b>Page App" not in html
    assert "Read user information" in html  # the scope's description, not only its name

    removed = world.browser.post(f"/dashboard/authorized-apps/{app.client_id}/remove",
                                 data={"csrf_token": csrf_token(html)})
    assert removed.status_code == 302 and removed.headers["Location"] == "/dashboard/authorized-apps"
    assert "Page App" not in world.browser.get("/dashboard/authorized-apps").get_data(as_text=True)
    assert not active(world, registered.resource, tokens["access_token"])


def test_a_forged_form_or_an_unknown_app_changes_nothing(world, registered):
    html = world.browser.get("/dashboard/authorized-apps").get_data(as_text=True)
    target = f"/dashboard/authorized-apps/{registered.main.client_id}/remove"
    with unchanged(world.database_url):
        assert world.browser.post(target, data={"csrf_token": "forged"}).status_code == 400
        assert world.browser.post(target).status_code == 400
        unknown = "/dashboard/authorized-apps/client_unknown/remove"
        assert world.browser.post(unknown, data={"csrf_token": csrf_token(html)}).status_code == 404


def test_another_account_cannot_remove_this_accounts_app(world, registered, other_browser):
    other = other_browser
    html = other.get("/dashboard/authorized-apps").get_data(as_text=True)
    assert registered.main.client_id not in html
    with unchanged(world.database_url):
        response = other.post(f"/dashboard/authorized-apps/{registered.main.client_id}/remove",
                              data={"csrf_token": csrf_token(html)})
        assert response.status_code == 404
