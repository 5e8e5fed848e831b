"""`/dashboard/apps`: the signed-in owner lists, registers, rotates the secret of and deletes OAuth
apps in the browser. A secret is shown once (never readable in the session cookie, gone on the
next visit); an app registered here really works; rotating and deleting take effect at once;
refused input says why and stores nothing; hostile values render as text."""

from __future__ import annotations

import re
import secrets

import pytest
from markupsafe import escape

from authserver import credentials
from authserver.oauth.scopes import SCOPES
from authserver.storage import clients, users

from ..conftest import PASSWORD, REDIRECT_URI
from ..helpers import csrf_token, login
from .owned_apps import active, client_credentials, code_flow_tokens, forget_owned_apps, token_request
from .stored_state import snapshot, unchanged
from .token_world import Registered, World, world  # noqa: F401 (fixtures)

PAGE = "/dashboard/apps"
WEB_APP = {"name": "Web App", "redirect_uris": REDIRECT_URI, "client_type": "confidential",
           "scopes": ["openid", "profile"], "grant_types": ["authorization_code", "refresh_token"]}
SHOWN_SECRET = re.compile(r'id="client-secret-value" type="text" value="([^"]+)"')


@pytest.fixture(autouse=True)
def no_apps(world):
    forget_owned_apps(world)


@pytest.fixture(scope="module")
def resource(world) -> Registered:
    return world.register(name="Resource Service", grant_types=("client_credentials",), scope="read:users")


def page_of(browser) -> str:
    response = browser.get(PAGE)
    assert response.status_code == 200, response.status_code
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


def submit(w: World, path: str = PAGE, **form):
    """Post a form of the apps page with the session's CSRF token."""
    return w.browser.post(path, data={"csrf_token": csrf_token(page_of(w.browser)), **form})


def register(w: World, **changes) -> tuple[str, str | None]:
    """Register through the page; (client_id, the secret shown once or None)."""
    response = submit(w, **{**WEB_APP, **changes})
    assert response.status_code == 303, response.get_data(as_text=True)
    shown = page_of(w.browser)
    secret = SHOWN_SECRET.search(shown)
    with w.app.app_context():
        (client,) = [app for app in clients.list_owned(w.user_id) if app.name == changes.get("name", WEB_APP["name"])]
        return client.client_id, secret.group(1) if secret else None


def owned(w: World) -> list:
    with w.app.app_context():
        return clients.list_owned(w.user_id)


def stranger_app(w: World) -> str:
    with w.app.app_context():
        stranger = users.create_user(f"stranger-{secrets.token_hex(4)}@example.com", "Eve", PASSWORD)
        client, _ = clients.create_client(name="Eve's app", redirect_uris=[REDIRECT_URI],
                                          grant_types=["authorization_code"], scope="openid", public=False,
                                          owner_id=stranger.id)
        return client.client_id


# -- the page --------------------------------------------------------------------------------------

def test_the_page_requires_sign_in(world):
    response = world.app.test_client().get(PAGE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fdashboard%2Fapps"


def test_the_page_lists_the_accounts_apps_with_what_they_are_registered_for(world):
    stranger_app(world)
    with world.app.app_context():
        web, _ = clients.create_owned(world.user_id, dict(
            name="Web App", redirect_uris=[REDIRECT_URI, "http://127.0.0.1:8080/cb"], post_logout_redirect_uris=[],
            grant_types=["authorization_code", "refresh_token"], scope="openid read:users", public=False,
            auth_method="client_secret_basic", require_pkce=True))
        phone, _ = clients.create_owned(world.user_id, dict(
            name="Phone App", redirect_uris=["com.example.app:/cb"], post_logout_redirect_uris=[],
            grant_types=["authorization_code"], scope="openid", public=True, auth_method="client_secret_basic",
            require_pkce=True))
        web_created = web.created_at
    shown = page_of(world.browser)
    assert '<a href="/dashboard/apps" class="active" aria-current="page">Apps</a>' in shown
    assert "Eve&#39;s app" not in shown and "Eve's app" not in shown
    items = shown.split('<li class="item">')[1:]
    names = [re.search(r'<h3 class="item-name">([^<]+)</h3>', item).group(1) for item in items]
    assert names == ["Phone App", "Web App"]
    phone_item, web_item = items
    assert ">Public<" in phone_item and ">Confidential<" in web_item
    for expected in (web.client_id, REDIRECT_URI, "http://127.0.0.1:8080/cb", "<code>read:users</code>",
                     "authorization_code, refresh_token", f'datetime="{web_created:%Y-%m-%d}"'):
        assert expected in web_item, expected
    assert "Rotate secret" in web_item and "Rotate secret" not in phone_item  # a public app has no secret
    assert "com.example.app:/cb" in phone_item and phone.client_id in phone_item


def test_the_form_offers_every_scope_of_the_catalogue_with_its_description(world):
    shown = page_of(world.browser)
    for scope, description in SCOPES.items():
        checkbox = rf'name="scopes" type="checkbox" value="{re.escape(scope)}">\s*<span>'
        assert re.search(checkbox + re.escape(str(escape(description))) + " ", shown), scope
    assert 'for="name">Name</label>' in shown and 'for="redirect_uris">Redirect URIs</label>' in shown
    assert "<legend class=\"label\">Grant types</legend>" in shown and "<legend class=\"label\">Type</legend>" in shown


# -- register --------------------------------------------------------------------------------------

def test_a_new_secret_is_shown_once_and_never_readable_in_the_session_cookie(world):
    response = submit(world, **WEB_APP)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard/apps#client-secret"
    set_cookies = response.headers.getlist("Set-Cookie")
    session_cookie = world.browser.get_cookie(world.app.config["SESSION_COOKIE_NAME"]).value
    session = world.app.session_interface.get_signing_serializer(world.app).loads(session_cookie)

    shown = page_of(world.browser)
    secret = SHOWN_SECRET.search(shown).group(1)
    assert 'data-copy-target="client-secret-value"' in shown
    assert "it is shown only once" in shown
    with world.app.app_context():
        (app,) = clients.list_owned(world.user_id)
        assert app.secret_digest == credentials.digest(secret)
    assert app.client_id in shown and secret.startswith("tds_")

    for readable in (*set_cookies, session_cookie, repr(session)):
        assert secret not in readable and secret[4:20] not in readable, readable
    assert secret not in repr(snapshot(world.database_url))

    again = page_of(world.browser)
    assert secret not in again and "client-secret-value" not in again


def test_an_app_registered_on_the_page_works_for_the_authorization_code_flow(world):
    client_id, secret = register(world, scopes=["openid", "read:users"])
    tokens = code_flow_tokens(world, client_id, secret, scope="openid read:users")
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)


def test_a_public_app_is_registered_without_a_secret(world):
    response = submit(world, **{**WEB_APP, "name": "Phone App", "client_type": "public",
                                "redirect_uris": f"com.example.app:/callback\n\n  {REDIRECT_URI}  \n"})
    assert (response.status_code, response.headers["Location"]) == (303, "/dashboard/apps")
    shown = page_of(world.browser)
    assert "Phone App is registered, as a public app" in shown and "client-secret-value" not in shown
    (app,) = owned(world)
    assert (app.is_public, app.redirect_uris) == (True, ["com.example.app:/callback", REDIRECT_URI])
    assert "access_token" in code_flow_tokens(world, app.client_id, None, scope="openid")


BAD_FORMS = {
    "name-missing": ({"name": ""}, "Name your app."),
    "name-blank": ({"name": "   "}, "Name your app."),
    "name-too-long": ({"name": "n" * 201}, "Use at most 200 characters."),
    "name-hostile-html": ({"name": "<script>alert(1)</script>"}, "Name: must not contain &lt; or &gt;"),
    "name-control-character": ({"name": "a\x07b"}, "Name: use letters, digits, spaces and punctuation only"),
    "redirect-uri-http-public-host": ({"redirect_uris": "http://app.example.com/cb"}, "must be https"),
    "redirect-uri-fragment": ({"redirect_uris": "https://app.example.com/cb#done"}, "must not contain a fragment"),
    "redirect-uri-javascript": ({"redirect_uris": "javascript:alert(1)"}, "must be https"),
    "redirect-uri-private-use-for-confidential": ({"redirect_uris": "com.example.app:/cb"},
                                                  "a private-use scheme is for native apps"),
    "redirect-uris-too-many": ({"redirect_uris": "\n".join(f"https://a.example.com/{n}" for n in range(11))},
                               "at most 10"),
    "redirect-uri-missing": ({"redirect_uris": ""}, "the authorization_code grant needs at least one"),
    "no-scopes": ({"scopes": []}, "Scope: choose at least one"),
    "scope-forged": ({"scopes": ["openid", "admin"]}, "unknown scope(s) admin"),
    "no-grant-types": ({"grant_types": []}, "Grant type: choose from"),
    "grant-type-forged": ({"grant_types": ["implicit"]}, "Grant type: choose from"),
    "public-client-credentials": ({"client_type": "public", "grant_types": ["client_credentials"]},
                                  "a public client cannot use client_credentials"),
    "type-missing": ({"client_type": None}, "Choose confidential or public."),
    "type-forged": ({"client_type": "trusted"}, "Choose confidential or public."),
}


@pytest.mark.parametrize("case", BAD_FORMS)
def test_bad_input_is_refused_with_a_message_and_stores_nothing(world, case):
    changes, message = BAD_FORMS[case]
    form = {name: value for name, value in {**WEB_APP, **changes}.items() if value is not None}
    token = csrf_token(page_of(world.browser))
    with unchanged(world.database_url):
        response = world.browser.post(PAGE, data={"csrf_token": token, **form})
    shown = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The app was not registered." in shown and message in shown, shown
    assert "<script>alert(1)</script>" not in shown  # what was sent comes back as text


def test_an_account_has_at_most_25_apps(world):
    with world.app.app_context():
        for number in range(clients.MAX_APPS_PER_ACCOUNT):
            clients.create_owned(world.user_id, dict(
                name=f"app {number}", redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[],
                grant_types=["authorization_code"], scope="openid", public=True,
                auth_method="client_secret_basic", require_pkce=True))
    shown = page_of(world.browser)
    assert "You have 25 apps, the most an account may have." in shown
    assert 'action="/dashboard/apps#register"' not in shown
    with unchanged(world.database_url):
        response = submit(world, **WEB_APP)
    assert response.status_code == 400
    assert "An account may have at most 25 apps: delete one first." in response.get_data(as_text=True)


# -- rotate and delete -----------------------------------------------------------------------------

def test_rotating_the_secret_shows_the_new_one_once_and_the_old_one_fails(world):
    client_id, old = register(world, grant_types=["client_credentials"], scopes=["read:users"], redirect_uris="")
    assert client_credentials(world, client_id, old).status_code == 200
    page = page_of(world.browser)
    assert "The current one stops working at once" in page

    response = submit(world, f"{PAGE}/{client_id}/rotate-secret")
    assert (response.status_code, response.headers["Location"]) == (303, "/dashboard/apps#client-secret")
    shown = page_of(world.browser)
    new = SHOWN_SECRET.search(shown).group(1)
    assert new != old and "New client secret" in shown and "The previous secret no longer works." in shown
    assert new not in page_of(world.browser)

    refused = client_credentials(world, client_id, old)
    assert (refused.status_code, refused.get_json()["error"]) == (401, "invalid_client")
    assert client_credentials(world, client_id, new).status_code == 200


def test_a_public_app_has_no_secret_to_rotate(world):
    client_id, _ = register(world, client_type="public", name="Phone App")
    with unchanged(world.database_url):
        response = submit(world, f"{PAGE}/{client_id}/rotate-secret")
    assert response.status_code == 400
    assert "A public app has no client secret." in response.get_data(as_text=True)


def test_deleting_an_app_ends_what_it_holds(world, resource):
    client_id, secret = register(world, scopes=["openid", "read:users"])
    tokens = code_flow_tokens(world, client_id, secret, scope="openid read:users")
    assert active(world, resource, tokens["access_token"])
    assert "Deleting the app is final" in page_of(world.browser)

    response = submit(world, f"{PAGE}/{client_id}/delete")
    assert (response.status_code, response.headers["Location"]) == (303, "/dashboard/apps")
    shown = page_of(world.browser)
    assert "Web App is deleted: its client ID, secret and tokens no longer work." in shown
    assert client_id not in shown and owned(world) == []

    assert not active(world, resource, tokens["access_token"])
    refreshed = token_request(world, client_id, secret, {"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]})
    assert (refreshed.status_code, refreshed.get_json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("action", ["rotate-secret", "delete"])
def test_someone_elses_or_an_unknown_app_is_not_found(world, action):
    register(world)
    for client_id in (stranger_app(world), "client_" + secrets.token_hex(12), "x" * 300):
        with unchanged(world.database_url):
            response = submit(world, f"{PAGE}/{client_id}/{action}")
        assert response.status_code == 404, client_id


@pytest.mark.parametrize("csrf", ["missing", "forged", "another-sessions"])
def test_every_form_needs_the_sessions_csrf_token(world, csrf):
    client_id, _ = register(world)
    if csrf == "another-sessions":
        other = world.app.test_client()
        assert login(other, "ada@example.com").status_code == 302
        token = {"csrf_token": csrf_token(page_of(other))}
    else:
        token = {"csrf_token": "forged-" + secrets.token_urlsafe(16)} if csrf == "forged" else {}
    with unchanged(world.database_url):
        responses = [world.browser.post(PAGE, data={**WEB_APP, "name": "Forged", **token}),
                     world.browser.post(f"{PAGE}/{client_id}/rotate-secret", data=token),
                     world.browser.post(f"{PAGE}/{client_id}/delete", data=token)]
    for response in responses:
        assert response.status_code == 400
        assert "The form expired or did not come from this site." in response.get_data(as_text=True)


def test_hostile_values_stored_before_render_as_text(world):
    """Apps registered by other means (the CLI, older rules) are shown as text, never as markup."""
    hostile = '<img src=x onerror="alert(1)">'
    with world.app.app_context():
        clients.create_client(name=hostile, redirect_uris=['https://app.example.com/cb?a="><script>alert(2)</script>'],
                              grant_types=["authorization_code"], scope="openid", public=False, owner_id=world.user_id)
    shown = page_of(world.browser)
    assert hostile not in shown and "<script>alert(2)</script>" not in shown
    assert str(escape(hostile)) in shown
