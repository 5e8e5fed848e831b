"""`/v1/api-keys`: an account owner creates, lists, rotates and revokes API keys, with an access
token that has `keys:manage` or with the browser session and its CSRF token. The key is shown
once, only its digest is stored, another account's keys are not found, and a refused request
stores nothing (`stored_state.unchanged`)."""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from sqlalchemy import delete, select, update

from authserver import credentials
from authserver.resource.api_key_format import is_well_formed, new_api_key
from authserver.storage import api_keys, users
from authserver.storage.db import session
from authserver.storage.models import ApiKey

from ..conftest import ISSUER, PASSWORD
from ..helpers import assert_envelope, csrf_token, login
from .stored_state import snapshot, unchanged
from .token_world import FORGERIES, JSON, Registered, World, world  # noqa: F401 (fixtures)

KEYS = "/v1/api-keys"
DAY = 86400
KEY_FIELDS = {"id", "name", "prefix", "last_four", "scopes", "created_at", "expires_at", "last_used_at", "rotated_from"}


# -- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_keys(world):
    """Every test starts with no keys (the world's account is shared by the module)."""
    world.execute(delete(ApiKey))


@pytest.fixture(scope="module")
def key_manager(world) -> Registered:
    """A client that may ask for keys:manage, and the user's consent to it."""
    return world.register(name="Key Manager", scope="openid read:users keys:manage")


@pytest.fixture(scope="module")
def token(world, key_manager) -> str:
    return world.user_tokens(key_manager, scope="openid keys:manage")["access_token"]


def bearer(access_token: str) -> dict:
    return {"Authorization": f"Bearer {access_token}"}


def create(w: World, access_token: str, **body):
    return w.api.post(KEYS, json=body, headers=bearer(access_token))


def created(w: World, access_token: str, name="CI deploy", scopes=("read_profile",), **body) -> dict:
    response = create(w, access_token, name=name, scopes=list(scopes), **body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def listed(w: World, access_token: str) -> list[dict]:
    response = w.api.get(KEYS, headers=bearer(access_token))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert set(response.get_json()) == {"data"}
    return response.get_json()["data"]


def rotate(w: World, access_token: str, key_id: str, body: dict | None = None):
    sent = {"json": body} if body is not None else {}
    return w.api.post(f"{KEYS}/{key_id}/rotate", headers=bearer(access_token), **sent)


def revoke(w: World, access_token: str, key_id: str):
    return w.api.delete(f"{KEYS}/{key_id}", headers=bearer(access_token))


def public(key_object: dict) -> dict:
    """The key object as listed: without the key itself and the rotation's extras."""
    return {name: value for name, value in key_object.items() if name in KEY_FIELDS}


def stranger_key(w: World) -> str:
    """The public id of a key of another account."""
    with w.app.app_context():
        stranger = users.create_user(f"stranger-{secrets.token_hex(4)}@example.com", "Eve", PASSWORD)
        row, _ = api_keys.create(stranger.id, "Eve's key", ["read_profile"])
        return row.public_id


# -- create, list, rotate, revoke ------------------------------------------------------------------

def test_a_new_key_is_shown_once_and_listed_without_it(world, token):
    before = int(time.time())
    expires_at = before + 30 * DAY
    response = create(world, token, name="  CI deploy <prod>  ", scopes=["read_profile", "write:data", "read_profile"],
                      expires_at=expires_at)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    key = body["key"]
    assert is_well_formed(key)
    assert body == {
        "id": body["id"],
        "name": "CI deploy <prod>",  # trimmed; HTML is fine, it is rendered escaped
        "prefix": key[:10],
        "last_four": key[-4:],
        "scopes": ["read_profile", "write:data"],
        "created_at": body["created_at"],
        "expires_at": expires_at,
        "last_used_at": None,
        "rotated_from": None,
        "key": key,
    }
    assert body["id"].startswith("key_") and before <= body["created_at"] <= time.time()

    response = world.api.get(KEYS, headers=bearer(token))
    assert response.get_json() == {"data": [public(body)]}
    assert key not in response.get_data(as_text=True)


def test_only_the_digest_of_a_key_is_stored(world, token):
    first = created(world, token)
    second = rotate(world, token, first["id"]).get_json()
    stored = snapshot(world.database_url)
    for key in (first["key"], second["key"]):
        assert key not in repr(stored)
        assert key[4:-7] not in repr(stored)  # not even the random part
    digests = {row.public_id: row.key_digest for row in _rows(world)}
    assert digests == {first["id"]: credentials.digest(first["key"]), second["id"]: credentials.digest(second["key"])}


def _rows(w: World) -> list[ApiKey]:
    with w.app.app_context():
        return list(session().scalars(select(ApiKey)))


def test_the_list_holds_usable_keys_newest_first(world, token):
    oldest = created(world, token, name="oldest")
    revoked = created(world, token, name="revoked")
    expired = created(world, token, name="expired")
    newest = created(world, token, name="newest", scopes=["read:users"])
    assert revoke(world, token, revoked["id"]).status_code == 204
    world.execute(update(ApiKey).where(ApiKey.public_id == expired["id"]).values(expires_at=int(time.time()) - 1))
    assert listed(world, token) == [public(newest), public(oldest)]


def test_rotation_issues_a_successor_and_keeps_the_old_key_for_the_grace_period(world, token):
    old = created(world, token, scopes=["read_profile", "read:users"])
    expires_at = int(time.time()) + 90 * DAY
    response = rotate(world, token, old["id"], {"grace_period_seconds": 3600, "expires_at": expires_at})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    now = int(time.time())
    assert body["key"] != old["key"] and is_well_formed(body["key"])
    assert body["id"] != old["id"]
    assert public(body) == {**public(body), "name": old["name"], "scopes": old["scopes"], "expires_at": expires_at,
                            "rotated_from": old["id"], "prefix": body["key"][:10], "last_four": body["key"][-4:]}
    replaced = body["replaces"]
    assert now + 3600 - 2 <= replaced["expires_at"] <= now + 3600
    assert replaced == {**public(old), "expires_at": replaced["expires_at"]}
    assert listed(world, token) == [public(body), replaced]


def test_rotation_defaults_to_a_day_of_grace_and_no_expiry(world, token):
    old = created(world, token)
    response = world.api.post(f"{KEYS}/{old['id']}/rotate", headers=bearer(token))  # no body at all
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["expires_at"] is None
    assert abs(body["replaces"]["expires_at"] - (int(time.time()) + DAY)) <= 2


def test_the_old_key_lives_until_the_grace_period_ends_or_it_expires_whichever_is_first(world, token):
    soon, later = int(time.time()) + 600, int(time.time()) + 30 * DAY
    expiring_soon, expiring_later = created(world, token, expires_at=soon), created(world, token, expires_at=later)
    assert rotate(world, token, expiring_soon["id"], {"grace_period_seconds": 7 * DAY}).get_json()["replaces"]["expires_at"] == soon
    replaced = rotate(world, token, expiring_later["id"], {"grace_period_seconds": 3600}).get_json()["replaces"]
    assert abs(replaced["expires_at"] - (int(time.time()) + 3600)) <= 2


def test_rotation_without_grace_retires_the_old_key_at_once(world, token):
    old = created(world, token)
    body = rotate(world, token, old["id"], {"grace_period_seconds": 0}).get_json()
    assert [key["id"] for key in listed(world, token)] == [body["id"]]
    with unchanged(world.database_url):
        assert_envelope(rotate(world, token, old["id"], {}), 404, "NOT_FOUND")
        assert_envelope(revoke(world, token, old["id"]), 404, "NOT_FOUND")


def test_a_revoked_key_is_gone(world, token):
    key = created(world, token)
    response = revoke(world, token, key["id"])
    assert response.status_code == 204 and response.get_data() == b""
    assert listed(world, token) == []
    with unchanged(world.database_url):
        assert_envelope(revoke(world, token, key["id"]), 404, "NOT_FOUND")
        assert_envelope(rotate(world, token, key["id"], {}), 404, "NOT_FOUND")


@pytest.mark.parametrize("key_id", ["other-account", "unknown", "malformed", "nul", "long"])
def test_a_key_that_is_not_the_callers_is_not_found(world, token, key_id):
    key_id = {
        "other-account": stranger_key(world),
        "unknown": "key_" + secrets.token_hex(12),
        "malformed": "not-a-key-id",
        "nul": "key_%00",
        "long": "key_" + "a" * 500,
    }[key_id]
    mine = created(world, token)
    with unchanged(world.database_url):
        not_found = [rotate(world, token, key_id, {}), revoke(world, token, key_id)]
    for response in not_found:
        body = assert_envelope(response, 404, "NOT_FOUND")
        assert key_id not in body["error"]["message"]
    assert listed(world, token) == [public(mine)]


def test_find_owned_finds_only_the_accounts_listed_keys(world, token):
    """What the dashboard looks a key up with: the same rules as the API's 404."""
    mine, revoked, strangers = created(world, token), created(world, token), stranger_key(world)
    assert revoke(world, token, revoked["id"]).status_code == 204
    with world.app.app_context():
        assert api_keys.find_owned(world.user_id, mine["id"]).public_id == mine["id"]
        assert api_keys.find_owned(world.user_id, revoked["id"]) is None
        assert api_keys.find_owned(world.user_id, strangers) is None
        assert api_keys.find_owned(world.user_id, "key_\x00") is None


def test_an_account_has_at_most_50_active_keys(world, token):
    with world.app.app_context():
        for number in range(49):
            api_keys.create(world.user_id, f"key {number}", ["read_profile"])
    last = created(world, token)
    with unchanged(world.database_url):
        assert_envelope(create(world, token, name="one too many", scopes=["read_profile"]), 400, "INVALID_REQUEST")
        # A successor while the old key lives on would be one too many as well.
        assert_envelope(rotate(world, token, last["id"], {"grace_period_seconds": 60}), 400, "INVALID_REQUEST")
    assert rotate(world, token, last["id"], {"grace_period_seconds": 0}).status_code == 201
    assert revoke(world, token, listed(world, token)[-1]["id"]).status_code == 204
    assert create(world, token, name="room again", scopes=["read_profile"]).status_code == 201


# -- who may manage keys ---------------------------------------------------------------------------

def every_route(w: World, headers: dict) -> list:
    key_id = "key_" + secrets.token_hex(12)
    return [
        w.api.get(KEYS, headers=headers),
        w.api.post(KEYS, json={"name": "x", "scopes": ["read_profile"]}, headers=headers),
        w.api.post(f"{KEYS}/{key_id}/rotate", json={}, headers=headers),
        w.api.delete(f"{KEYS}/{key_id}", headers=headers),
    ]


def test_without_credentials_every_route_asks_for_a_bearer_token(world, token):
    created(world, token)
    with unchanged(world.database_url):
        responses = every_route(world, {})
    for response in responses:
        assert_envelope(response, 401, "INVALID_TOKEN")
        assert response.headers["WWW-Authenticate"].startswith(f'Bearer realm="{ISSUER}"')


def test_a_token_without_keys_manage_is_refused_with_insufficient_scope(world, key_manager, token):
    created(world, token)
    read_only = world.user_tokens(key_manager, scope="openid read:users")["access_token"]
    with unchanged(world.database_url):
        responses = every_route(world, bearer(read_only))
    for response in responses:
        assert_envelope(response, 403, "INSUFFICIENT_SCOPE")
        assert response.headers["WWW-Authenticate"] == (
            f'Bearer realm="{ISSUER}", error="insufficient_scope", scope="keys:manage"')


@pytest.mark.parametrize("credential", ["client-credentials-token", "not-a-token", "forged-signature", "basic"])
def test_other_credentials_are_refused(world, key_manager, token, credential):
    headers = {
        "client-credentials-token": lambda: bearer(world.machine_token(key_manager)),  # a client, not an account
        "not-a-token": lambda: bearer("not-a-token"),
        "forged-signature": lambda: bearer(FORGERIES["tampered-signature"](world, token)),
        "basic": lambda: {"Authorization": "Basic " + base64.b64encode(
            f"{key_manager.client_id}:{key_manager.secret}".encode()).decode()},
    }[credential]()
    with unchanged(world.database_url):
        responses = every_route(world, headers)
    for response in responses:
        assert_envelope(response, 401, "INVALID_TOKEN")


def test_an_expired_token_gets_token_expired(world, token):
    with unchanged(world.database_url):
        responses = every_route(world, bearer(FORGERIES["expired"](world, token)))
    for response in responses:
        assert_envelope(response, 401, "TOKEN_EXPIRED")


def test_the_token_of_a_disabled_account_is_refused(world, token):
    world.disable_user()
    try:
        with unchanged(world.database_url):
            responses = every_route(world, bearer(token))
    finally:
        world.enable_user()
    for response in responses:
        assert_envelope(response, 401, "INVALID_TOKEN")


# -- the browser session ---------------------------------------------------------------------------

def session_csrf(browser) -> str:
    return csrf_token(browser.get("/logout").get_data(as_text=True))


def test_the_signed_in_browser_manages_keys_with_its_csrf_token(world, token):
    csrf = {"X-CSRFToken": session_csrf(world.browser)}
    response = world.browser.post(KEYS, json={"name": "from the dashboard", "scopes": ["write_data"]}, headers=csrf)
    assert response.status_code == 201, response.get_data(as_text=True)
    key = response.get_json()
    rotated = world.browser.post(f"{KEYS}/{key['id']}/rotate", json={"grace_period_seconds": 0}, headers=csrf)
    assert rotated.status_code == 201, rotated.get_data(as_text=True)
    new = rotated.get_json()
    assert world.browser.get(KEYS).get_json() == {"data": [public(new)]}  # reading needs no CSRF token
    assert world.browser.delete(f"{KEYS}/{new['id']}", headers=csrf).status_code == 204
    assert listed(world, token) == []


@pytest.mark.parametrize("csrf", ["missing", "forged", "another-sessions"])
def test_unsafe_requests_of_the_session_need_its_csrf_token(world, token, csrf):
    key = created(world, token)
    if csrf == "another-sessions":
        other_browser = world.app.test_client()
        assert login(other_browser, "ada@example.com").status_code == 302
        headers = {"X-CSRFToken": session_csrf(other_browser)}
    else:
        headers = {"X-CSRFToken": "forged-" + secrets.token_urlsafe(16)} if csrf == "forged" else {}
    with unchanged(world.database_url):
        responses = [
            world.browser.post(KEYS, json={"name": "x", "scopes": ["read_profile"]}, headers=headers),
            world.browser.post(f"{KEYS}/{key['id']}/rotate", json={}, headers=headers),
            world.browser.delete(f"{KEYS}/{key['id']}", headers=headers),
        ]
    for response in responses:
        assert "CSRF" in assert_envelope(response, 400, "INVALID_REQUEST")["error"]["message"]


def test_a_signed_out_browser_is_asked_to_authenticate(world):
    with unchanged(world.database_url):
        response = world.app.test_client().get(KEYS)
    assert_envelope(response, 401, "INVALID_TOKEN")


# -- bad input: 400, nothing stored ----------------------------------------------------------------

NOW = int(time.time())
GOOD = {"name": "CI deploy", "scopes": ["read_profile"]}


def body(**changes) -> dict:
    return {name: value for name, value in {**GOOD, **changes}.items() if value is not ...}


BAD_CREATE_BODIES = {
    "not-json": ("{'name': 'x'}", JSON),
    "truncated-json": ('{"name": "x",', JSON),
    "array": ("[]", JSON),
    "string": ('"name"', JSON),
    "empty": ("", JSON),
    "repeated-field": ('{"name": "a", "name": "b", "scopes": ["read_profile"]}', JSON),
    "nan-expiry": ('{"name": "a", "scopes": ["read_profile"], "expires_at": NaN}', JSON),
    "form-encoded": ("name=x&scopes=read_profile", "application/x-www-form-urlencoded"),
    "text-plain": (json.dumps(GOOD), "text/plain"),
    "no-content-type": (json.dumps(GOOD), None),
    "unknown-field": (body(plan="enterprise"), JSON),
    "key-chosen-by-caller": (body(key=new_api_key()), JSON),
    "no-name": (body(name=...), JSON),
    "no-scopes": (body(scopes=...), JSON),
    "name-empty": (body(name=""), JSON),
    "name-blank": (body(name="   "), JSON),
    "name-too-long": (body(name="n" * 101), JSON),
    "name-not-text": (body(name=42), JSON),
    "name-null": (body(name=None), JSON),
    "name-with-newline": (body(name="a\nb"), JSON),
    "name-with-nul": (body(name="a\x00b"), JSON),
    "name-lone-surrogate": ('{"name": "\\ud800", "scopes": ["read_profile"]}', JSON),
    "scopes-empty": (body(scopes=[]), JSON),
    "scopes-a-string": (body(scopes="read_profile"), JSON),
    "scopes-null": (body(scopes=None), JSON),
    "scope-keys-manage": (body(scopes=["read_profile", "keys:manage"]), JSON),
    "scope-openid": (body(scopes=["openid"]), JSON),
    "scope-unknown": (body(scopes=["admin"]), JSON),
    "scope-not-text": (body(scopes=[1]), JSON),
    "scope-nested": (body(scopes=[["read_profile"]]), JSON),
    "expiry-past": (body(expires_at=NOW - 60), JSON),
    "expiry-now": (body(expires_at=NOW), JSON),  # read at collection: not in the future when sent
    "expiry-beyond-365-days": (body(expires_at=NOW + 366 * DAY), JSON),
    "expiry-huge": (body(expires_at=10**30), JSON),
    "expiry-negative": (body(expires_at=-1), JSON),
    "expiry-fraction": (body(expires_at=NOW + DAY + 0.5), JSON),
    "expiry-string": (body(expires_at=str(NOW + DAY)), JSON),
    "expiry-boolean": (body(expires_at=True), JSON),
}


def send(w: World, path: str, access_token: str, sent, content_type):
    data = sent if isinstance(sent, str) else json.dumps(sent)
    headers = bearer(access_token)
    if content_type:
        headers["Content-Type"] = content_type
    return w.api.post(path, data=data, headers=headers)


@pytest.mark.parametrize("case", BAD_CREATE_BODIES)
def test_a_bad_create_request_is_refused_and_stores_nothing(world, token, case):
    created(world, token)
    with unchanged(world.database_url):
        response = send(world, KEYS, token, *BAD_CREATE_BODIES[case])
    assert_envelope(response, 400, "INVALID_REQUEST")


BAD_ROTATE_BODIES = {
    "not-json": ("{", JSON),
    "array": ("[]", JSON),
    "text-plain": ('{"grace_period_seconds": 0}', "text/plain"),
    "unknown-field": ({"grace_period_seconds": 0, "name": "renamed"}, JSON),
    "grace-negative": ({"grace_period_seconds": -1}, JSON),
    "grace-over-7-days": ({"grace_period_seconds": 7 * DAY + 1}, JSON),
    "grace-null": ({"grace_period_seconds": None}, JSON),
    "grace-string": ({"grace_period_seconds": "60"}, JSON),
    "grace-fraction": ({"grace_period_seconds": 1.5}, JSON),
    "grace-boolean": ({"grace_period_seconds": False}, JSON),
    "expiry-past": ({"expires_at": NOW - 60}, JSON),
    "expiry-beyond-365-days": ({"expires_at": NOW + 366 * DAY}, JSON),
}


@pytest.mark.parametrize("case", BAD_ROTATE_BODIES)
def test_a_bad_rotate_request_is_refused_and_stores_nothing(world, token, case):
    key = created(world, token)
    with unchanged(world.database_url):
        response = send(world, f"{KEYS}/{key['id']}/rotate", token, *BAD_ROTATE_BODIES[case])
    assert_envelope(response, 400, "INVALID_REQUEST")
    assert listed(world, token) == [public(key)]
