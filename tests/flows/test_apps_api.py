"""`/v1/apps`: an account owner registers, lists, rotates the secret of and deletes OAuth apps,
with an access token that has `keys:manage` or with the browser session and its CSRF token. An
app registered here really works; its secret is shown once and stored only as a digest; rotating
it and deleting the app take effect at once; another account's apps are not found; a refused
request stores nothing (`stored_state.unchanged`)."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from authserver import credentials
from authserver.storage import clients, users
from authserver.storage.db import session
from authserver.storage.models import RefreshToken

from ..conftest import ISSUER, PASSWORD, REDIRECT_URI
from ..helpers import assert_envelope, csrf_token
from .owned_apps import active, client_credentials, code_flow_tokens, forget_owned_apps, token_request
from .stored_state import snapshot, unchanged
from .token_world import JSON, Registered, World, post, world  # noqa: F401 (fixtures)

APPS = "/v1/apps"
APP_FIELDS = {"client_id", "name", "public", "redirect_uris", "post_logout_redirect_uris", "scopes", "grant_types",
              "token_endpoint_auth_method", "created_at"}
WEB_APP = {"name": "Web App", "redirect_uris": [REDIRECT_URI], "public": False, "scopes": ["openid", "profile"],
           "grant_types": ["authorization_code", "refresh_token"]}


# -- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_apps(world):
    """Every test starts with no apps of the account (the world's account is shared by the module)."""
    forget_owned_apps(world)


@pytest.fixture(scope="module")
def app_manager(world) -> Registered:
    """A client that may ask for keys:manage, and the user's consent to it."""
    return world.register(name="App Manager", scope="openid read:users keys:manage")


@pytest.fixture(scope="module")
def token(world, app_manager) -> str:
    return world.user_tokens(app_manager, scope="openid keys:manage")["access_token"]


@pytest.fixture(scope="module")
def resource(world) -> Registered:
    """A resource service, which introspects tokens."""
    return world.register(name="Resource Service", grant_types=("client_credentials",), scope="read:users")


def bearer(access_token: str) -> dict:
    return {"Authorization": f"Bearer {access_token}"}


def create(w: World, access_token: str, **body):
    return w.api.post(APPS, json=body, headers=bearer(access_token))


def created(w: World, access_token: str, **changes) -> dict:
    response = create(w, access_token, **{**WEB_APP, **changes})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def listed(w: World, access_token: str) -> list[dict]:
    response = w.api.get(APPS, headers=bearer(access_token))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert set(response.get_json()) == {"data"}
    return response.get_json()["data"]


def rotate(w: World, access_token: str, client_id: str):
    return w.api.post(f"{APPS}/{client_id}/rotate-secret", headers=bearer(access_token))


def remove(w: World, access_token: str, client_id: str):
    return w.api.delete(f"{APPS}/{client_id}", headers=bearer(access_token))


def public(app_object: dict) -> dict:
    """The app object as listed: without the secret."""
    return {name: value for name, value in app_object.items() if name in APP_FIELDS}


def stranger_app(w: World) -> str:
    """The client_id of another account's app."""
    with w.app.app_context():
        stranger = users.create_user(f"stranger-{secrets.token_hex(4)}@example.com", "Eve", PASSWORD)
        client, _ = clients.create_client(name="Eve's app", redirect_uris=[REDIRECT_URI],
                                          grant_types=["client_credentials"], scope="read:users", public=False,
                                          owner_id=stranger.id)
        return client.client_id


# -- register and list ------------------------------------------------------------------------------

def test_a_confidential_app_gets_its_secret_once_and_is_listed_without_it(world, token, caplog):
    before = int(time.time())
    caplog.set_level(logging.DEBUG)
    response = create(world, token, name="  Web App  ", redirect_uris=[REDIRECT_URI, "http://127.0.0.1:8765/cb"],
                      public=False, scopes=["openid", "profile", "openid"], grant_types=["authorization_code"],
                      post_logout_redirect_uris=["https://app.example.com/signed-out"])
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    secret = body["client_secret"]
    assert secret.startswith("tds_") and len(secret) >= 47
    assert body == {
        "client_id": body["client_id"],
        "name": "Web App",  # trimmed
        "public": False,
        "redirect_uris": [REDIRECT_URI, "http://127.0.0.1:8765/cb"],
        "post_logout_redirect_uris": ["https://app.example.com/signed-out"],
        "scopes": ["openid", "profile"],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "created_at": body["created_at"],
        "client_secret": secret,
    }
    assert body["client_id"].startswith("client_") and before <= body["created_at"] <= time.time()
    assert secret not in caplog.text

    response = world.api.get(APPS, headers=bearer(token))
    assert response.get_json() == {"data": [public(body)]}
    assert secret not in response.get_data(as_text=True)
    stored = repr(snapshot(world.database_url))
    assert secret not in stored and secret.removeprefix("tds_") not in stored
    assert credentials.digest(secret) in stored


def test_a_public_app_gets_no_secret(world, token):
    body = created(world, token, name="Phone App", public=True, redirect_uris=["com.example.app:/callback"])
    assert "client_secret" not in body
    assert (body["public"], body["token_endpoint_auth_method"]) == (True, "none")
    assert listed(world, token) == [body]


def test_the_list_holds_only_the_accounts_apps_newest_first(world, token):
    stranger_app(world)
    first, second = created(world, token, name="First"), created(world, token, name="Second")
    assert listed(world, token) == [public(second), public(first)]


def test_an_app_registered_here_signs_people_in_with_the_authorization_code_flow(world, token):
    app = created(world, token, scopes=["openid", "read:users"])
    tokens = code_flow_tokens(world, app["client_id"], app["client_secret"], scope="openid read:users")
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
    refreshed = token_request(world, app["client_id"], app["client_secret"],
                              {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_json()


def test_a_public_app_registered_here_uses_the_flow_with_pkce_and_no_secret(world, token):
    app = created(world, token, public=True, scopes=["openid"])
    tokens = code_flow_tokens(world, app["client_id"], None, scope="openid")
    assert "access_token" in tokens


def test_an_account_has_at_most_25_apps(world, token):
    with world.app.app_context():
        for number in range(clients.MAX_APPS_PER_ACCOUNT - 1):
            clients.create_owned(world.user_id, {**_registration(), "name": f"app {number}"})
    last = created(world, token)
    with unchanged(world.database_url):
        body = assert_envelope(create(world, token, **WEB_APP), 400, "INVALID_REQUEST")
    assert "at most 25 apps" in body["error"]["message"]
    assert remove(world, token, last["client_id"]).status_code == 204
    assert create(world, token, **WEB_APP).status_code == 201


def _registration() -> dict:
    return dict(name="app", redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[],
                grant_types=["authorization_code"], scope="openid", public=True, auth_method="client_secret_basic",
                require_pkce=True)


# -- rotate the secret -------------------------------------------------------------------------------

def test_rotating_the_secret_makes_the_old_one_fail_at_the_token_endpoint(world, token):
    app = created(world, token, grant_types=["client_credentials"], scopes=["read:users"], redirect_uris=[])
    old = app["client_secret"]
    assert client_credentials(world, app["client_id"], old).status_code == 200

    response = rotate(world, token, app["client_id"])
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    new = response.get_json()["client_secret"]
    assert set(response.get_json()) == {"client_secret"} and new != old and new.startswith("tds_")

    refused = client_credentials(world, app["client_id"], old)
    assert (refused.status_code, refused.get_json()["error"]) == (401, "invalid_client")
    assert client_credentials(world, app["client_id"], new).status_code == 200
    assert listed(world, token) == [public(app)]


def test_a_public_app_has_no_secret_to_rotate(world, token):
    app = created(world, token, public=True)
    with unchanged(world.database_url):
        assert_envelope(rotate(world, token, app["client_id"]), 400, "INVALID_REQUEST")


# -- delete ------------------------------------------------------------------------------------------

def test_deleting_an_app_ends_its_refresh_tokens_and_their_access_tokens(world, token, resource):
    app = created(world, token, scopes=["openid", "read:users", "keys:manage"])
    client_id, secret = app["client_id"], app["client_secret"]
    first = code_flow_tokens(world, client_id, secret, scope="openid keys:manage")
    refreshed = token_request(world, client_id, secret, {"grant_type": "refresh_token",
                                                         "refresh_token": first["refresh_token"]})
    tokens = refreshed.get_json()  # recorded on the rotated refresh token only, not on the code
    with world.app.app_context():
        row_id = clients.find_active(client_id).id
    as_app = Registered(client_id, secret, row_id, "client_secret_basic")
    assert active(world, resource, tokens["access_token"])
    assert active(world, as_app, tokens["refresh_token"])  # only the app itself may see its refresh token
    assert world.api.get(APPS, headers=bearer(tokens["access_token"])).status_code == 200

    response = remove(world, token, client_id)
    assert response.status_code == 204 and response.get_data() == b""

    assert not active(world, resource, tokens["access_token"])
    assert not active(world, resource, tokens["refresh_token"])
    gone = post(world.api, "/oauth/introspect", as_app, {"token": tokens["refresh_token"]})
    assert gone.status_code == 401  # the app is no more: it cannot even ask
    assert_envelope(world.api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
                    401, "INVALID_TOKEN")
    with world.app.app_context():
        assert session().scalars(select(RefreshToken).where(RefreshToken.client_id == row_id)).all() == []
    # The access token is on the deny list, so not even the /v1 API (which does not look the
    # client up) takes it any more.
    for access_token in (first["access_token"], tokens["access_token"]):
        assert_envelope(world.api.get(APPS, headers=bearer(access_token)), 401, "INVALID_TOKEN")
    assert listed(world, token) == []


def test_deleting_an_app_without_refresh_tokens_revokes_the_access_tokens_its_codes_gave(world, token):
    app = created(world, token, grant_types=["authorization_code"], scopes=["openid", "keys:manage"])
    tokens = code_flow_tokens(world, app["client_id"], app["client_secret"], scope="openid keys:manage")
    assert "refresh_token" not in tokens
    assert world.api.get(APPS, headers=bearer(tokens["access_token"])).status_code == 200
    assert remove(world, token, app["client_id"]).status_code == 204
    assert_envelope(world.api.get(APPS, headers=bearer(tokens["access_token"])), 401, "INVALID_TOKEN")


@pytest.mark.parametrize("client_id", ["other-account", "unknown", "nul", "long"])
def test_an_app_that_is_not_the_callers_is_not_found(world, token, client_id):
    client_id = {
        "other-account": stranger_app(world),
        "unknown": "client_" + secrets.token_hex(12),
        "nul": "client_%00",
        "long": "client_" + "a" * 500,
    }[client_id]
    mine = created(world, token)
    with unchanged(world.database_url):
        not_found = [rotate(world, token, client_id), remove(world, token, client_id)]
    for response in not_found:
        body = assert_envelope(response, 404, "NOT_FOUND")
        assert client_id not in body["error"]["message"]
    assert listed(world, token) == [public(mine)]


# -- who may manage apps -----------------------------------------------------------------------------

def every_route(w: World, headers: dict, client_id: str) -> list:
    return [
        w.api.get(APPS, headers=headers),
        w.api.post(APPS, json=WEB_APP, headers=headers),
        w.api.post(f"{APPS}/{client_id}/rotate-secret", headers=headers),
        w.api.delete(f"{APPS}/{client_id}", headers=headers),
    ]


def test_without_credentials_every_route_asks_for_a_bearer_token(world, token):
    app = created(world, token)
    with unchanged(world.database_url):
        responses = every_route(world, {}, app["client_id"])
    for response in responses:
        assert_envelope(response, 401, "INVALID_TOKEN")
        assert response.headers["WWW-Authenticate"].startswith(f'Bearer realm="{ISSUER}"')


def test_a_token_without_keys_manage_is_refused_with_insufficient_scope(world, app_manager, token):
    app = created(world, token)
    read_only = world.user_tokens(app_manager, scope="openid read:users")["access_token"]
    with unchanged(world.database_url):
        responses = every_route(world, bearer(read_only), app["client_id"])
    for response in responses:
        assert_envelope(response, 403, "INSUFFICIENT_SCOPE")


def test_the_apps_own_client_credentials_are_not_an_account(world, token):
    app = created(world, token, grant_types=["client_credentials"], scopes=["keys:manage"], redirect_uris=[])
    machine = client_credentials(world, app["client_id"], app["client_secret"]).get_json()["access_token"]
    basic = "Basic " + base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    with unchanged(world.database_url):
        responses = [*every_route(world, bearer(machine), app["client_id"]),
                     *every_route(world, {"Authorization": basic}, app["client_id"])]
    for response in responses:
        assert_envelope(response, 401, "INVALID_TOKEN")


def test_the_signed_in_browser_manages_apps_with_its_csrf_token(world, token):
    csrf = {"X-CSRFToken": csrf_token(world.browser.get("/dashboard/apps").get_data(as_text=True))}
    response = world.browser.post(APPS, json=WEB_APP, headers=csrf)
    assert response.status_code == 201, response.get_data(as_text=True)
    app = response.get_json()
    assert world.browser.get(APPS).get_json() == {"data": [public(app)]}  # reading needs no CSRF token
    assert world.browser.post(f"{APPS}/{app['client_id']}/rotate-secret", headers=csrf).status_code == 201
    assert world.browser.delete(f"{APPS}/{app['client_id']}", headers=csrf).status_code == 204
    assert listed(world, token) == []


@pytest.mark.parametrize("csrf", ["missing", "forged"])
def test_unsafe_requests_of_the_session_need_its_csrf_token(world, token, csrf):
    app = created(world, token)
    headers = {"X-CSRFToken": "forged-" + secrets.token_urlsafe(16)} if csrf == "forged" else {}
    with unchanged(world.database_url):
        responses = [
            world.browser.post(APPS, json=WEB_APP, headers=headers),
            world.browser.post(f"{APPS}/{app['client_id']}/rotate-secret", headers=headers),
            world.browser.delete(f"{APPS}/{app['client_id']}", headers=headers),
        ]
    for response in responses:
        assert "CSRF" in assert_envelope(response, 400, "INVALID_REQUEST")["error"]["message"]


# -- bad input: 400, nothing stored ------------------------------------------------------------------

def body(**changes) -> dict:
    return {name: value for name, value in {**WEB_APP, **changes}.items() if value is not ...}


BAD_BODIES = {
    "not-json": ("{'name': 'x'}", JSON),
    "array": ("[]", JSON),
    "empty": ("", JSON),
    "repeated-field": ('{"name": "a", "name": "b"}', JSON),
    "form-encoded": ("name=x&public=false", "application/x-www-form-urlencoded"),
    "no-content-type": (json.dumps(WEB_APP), None),
    "unknown-field": (body(owner_id=1), JSON),
    "secret-chosen-by-caller": (body(client_secret="tds_mine"), JSON),
    "auth-method-chosen-by-caller": (body(token_endpoint_auth_method="none"), JSON),
    "no-name": (body(name=...), JSON),
    "no-public": (body(public=...), JSON),
    "no-scopes": (body(scopes=...), JSON),
    "no-grant-types": (body(grant_types=...), JSON),
    "no-redirect-uris": (body(redirect_uris=...), JSON),
    "name-empty": (body(name=""), JSON),
    "name-blank": (body(name="   "), JSON),
    "name-too-long": (body(name="n" * 201), JSON),
    "name-not-text": (body(name=42), JSON),
    "name-with-newline": (body(name="a\nb"), JSON),
    "name-with-nul": (body(name="a\x00b"), JSON),
    "name-lone-surrogate": (json.dumps(body(name="X")).replace('"X"', '"\\ud800"'), JSON),
    "name-with-html": (body(name="<script>alert(1)</script>"), JSON),
    "public-a-string": (body(public="false"), JSON),
    "public-null": (body(public=None), JSON),
    "redirect-uris-a-string": (body(redirect_uris=REDIRECT_URI), JSON),
    "redirect-uri-not-text": (body(redirect_uris=[1]), JSON),
    "redirect-uri-http-public-host": (body(redirect_uris=["http://app.example.com/cb"]), JSON),
    "redirect-uri-fragment": (body(redirect_uris=["https://app.example.com/cb#top"]), JSON),
    "redirect-uri-relative": (body(redirect_uris=["/callback"]), JSON),
    "redirect-uri-javascript": (body(redirect_uris=["javascript:alert(1)"]), JSON),
    "redirect-uri-with-space": (body(redirect_uris=["https://app.example.com/a b"]), JSON),
    "redirect-uri-with-newline": (body(redirect_uris=["https://app.example.com/cb\n"]), JSON),
    "redirect-uri-unclosed-ipv6": (body(redirect_uris=["https://[::1/cb"]), JSON),
    "redirect-uri-too-long": (body(redirect_uris=["https://app.example.com/" + "a" * 2000]), JSON),
    "redirect-uris-too-many": (body(redirect_uris=[f"https://app.example.com/{n}" for n in range(11)]), JSON),
    "private-use-scheme-for-a-confidential-app": (body(redirect_uris=["com.example.app:/cb"]), JSON),
    "code-grant-without-redirect-uri": (body(redirect_uris=[]), JSON),
    "post-logout-uri-http-public-host": (body(post_logout_redirect_uris=["http://app.example.com/bye"]), JSON),
    "post-logout-uris-null": (body(post_logout_redirect_uris=None), JSON),
    "scopes-empty": (body(scopes=[]), JSON),
    "scope-unknown": (body(scopes=["admin"]), JSON),
    "scopes-a-string": (body(scopes="openid"), JSON),
    "grant-types-empty": (body(grant_types=[]), JSON),
    "grant-type-implicit": (body(grant_types=["implicit"]), JSON),
    "grant-type-password": (body(grant_types=["password"]), JSON),
    "public-client-credentials": (body(public=True, grant_types=["client_credentials"]), JSON),
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_a_bad_registration_is_refused_and_stores_nothing(world, token, case):
    created(world, token)
    sent, content_type = BAD_BODIES[case]
    headers = bearer(token)
    if content_type:
        headers["Content-Type"] = content_type
    with unchanged(world.database_url):
        response = world.api.post(APPS, data=sent if isinstance(sent, str) else json.dumps(sent), headers=headers)
    assert_envelope(response, 400, "INVALID_REQUEST")


def test_a_native_app_may_use_a_private_use_scheme_and_loopback(world, token):
    uris = ["com.example.app:/oauth2redirect", "http://127.0.0.1:51004/cb", "http://[::1]:51004/cb"]
    assert created(world, token, public=True, redirect_uris=uris)["redirect_uris"] == uris


def test_the_readme_example_registers_an_app(world, token):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## OAuth apps", 1)[1].split("\n## ", 1)[0]
    example = json.loads(re.search(r"-d '([^']+)'", section).group(1))
    response = world.api.post(APPS, json=example, headers=bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert set(response.get_json()) == APP_FIELDS | {"client_secret"}
