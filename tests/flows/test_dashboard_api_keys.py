"""`/dashboard/api-keys`: a signed-in owner generates a key (shown on the next page once, never
readable in the session cookie), rotates one with a grace period, and revokes one; refused input
says why and stores nothing (`stored_state.unchanged`); other accounts' keys are not found."""

from __future__ import annotations

import html
import re
import time

import pytest
from markupsafe import escape
from sqlalchemy import update

from authserver.storage import api_keys
from authserver.storage.models import ApiKey
from authserver.web import shown_once
from authserver.web.api_key_display import utc
from authserver.web.dashboard_api_keys import NEW_KEY

from ..conftest import PASSWORD
from ..helpers import csrf_token, login
from .stored_state import unchanged

PAGE = "/dashboard/api-keys"
DAY = 86400
WARNING = "Copy and securely store your key now: API keys are shown only once."
SHOWN_KEY = re.compile(r'id="new-api-key"[^>]*value="([^"]+)"')
KEY_ITEM = re.compile(r'<li class="item" id="(key_[0-9a-f]+)".*?</li>', re.DOTALL)


# -- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture
def owner(client, make_user):
    """The signed-in account."""
    user = make_user(email="owner@example.com")
    login(client, "owner@example.com", PASSWORD)
    return user


def page_html(client) -> str:
    response = client.get(PAGE)
    assert response.status_code == 200, response.status_code
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


def text_of(page: str) -> str:
    """What a reader sees, roughly: tags dropped, entities decoded, white space collapsed (and none
    before punctuation)."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    return re.sub(r" ([,.;:)])", r"\1", text)


def shown_key(page: str) -> str | None:
    match = SHOWN_KEY.search(page)
    return html.unescape(match.group(1)) if match else None


def key_items(page: str) -> dict[str, str]:
    """The listed keys: public id → the text of its item."""
    return {match.group(1): text_of(match.group(0)) for match in KEY_ITEM.finditer(page)}


def post_generate(client, csrf: str | None = "from the page", **fields):
    data = {"name": "CI deploy", "scopes": ["read:users"], "expires": "never", **fields}
    if csrf == "from the page":
        csrf = csrf_token(page_html(client))
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(PAGE, data=data)


def generate(client, **fields) -> tuple[str, str]:
    """Generate a key through the page; returns (the page that shows it, the key)."""
    response = post_generate(client, **fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == f"{PAGE}#new-key"
    page = page_html(client)
    key = shown_key(page)
    assert key, "the new key is not on the page"
    return page, key


def post_action(client, key_id: str, action: str, csrf: str | None = "from the page", **fields):
    data = dict(fields)
    if csrf == "from the page":
        csrf = csrf_token(page_html(client))
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(f"{PAGE}/{key_id}/{action}", data=data)


def usable(app, key: str) -> ApiKey | None:
    with app.app_context():
        return api_keys.find_usable(key)


def listed_ids(app, user_id: int) -> list[str]:
    with app.app_context():
        return [row.public_id for row in api_keys.list_for_user(user_id)]


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


# -- sign-in ----------------------------------------------------------------------------------------

def test_the_page_requires_sign_in(client, database_url):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={PAGE.replace('/', '%2F')}"
    with unchanged(database_url):
        refused = client.post(PAGE, data={"name": "CI", "scopes": ["read:users"], "expires": "never"})
    assert refused.status_code in (302, 400)  # no session: no CSRF token either


def test_the_page_is_the_dashboards_api_keys_page(client, owner):
    page = page_html(client)
    assert re.search(r'<a href="/dashboard/api-keys" class="active" aria-current="page">API keys</a>', page)
    assert "You have no API keys yet." in text_of(page)
    for scope, description in [("read_profile", "Read your profile"), ("read:users", "Read user information")]:
        assert re.search(rf'<label class="choice">\s*<input type="checkbox" name="scopes" value="{scope}">\s*'
                         rf'<span>{description} <code>{scope}</code></span>', page), scope
    assert '<label class="label" for="name">Name</label>' in page
    assert '<label class="label" for="expires">Expires</label>' in page


# -- generate: shown once -----------------------------------------------------------------------

def test_a_generated_key_is_shown_once_then_only_its_prefix_and_last_four(app, client, owner):
    before = int(time.time())
    page, key = generate(client, name="CI deploy", scopes=["read:users", "write:data"], expires="30")

    assert WARNING in text_of(page)
    assert 'data-copy-target="new-api-key"' in page
    row = usable(app, key)
    assert row is not None and row.user_id == owner.id
    assert (row.name, row.scopes) == ("CI deploy", ["read:users", "write:data"])
    assert before + 30 * DAY <= row.expires_at <= int(time.time()) + 30 * DAY
    assert "Your new key: CI deploy" in text_of(page)

    reloaded = page_html(client)
    assert key not in reloaded and shown_key(reloaded) is None and WARNING not in reloaded
    item = key_items(reloaded)[row.public_id]
    assert f"{key[:10]}…{key[-4:]}" in item
    assert "CI deploy" in item and "read:users" in item and "write:data" in item
    assert f"Created {utc(row.created_at)}" in item and utc(row.created_at).endswith(" UTC")
    assert "Last used never" in item
    assert f"Expires {utc(row.expires_at)}" in item
    assert "Active" in item


def test_the_session_cookie_never_holds_the_key_readably(app, client, owner):
    response = post_generate(client)
    assert response.status_code == 303
    cookie = session_cookie(client)
    decoded = app.session_interface.get_signing_serializer(app).loads(cookie)

    key = shown_key(page_html(client))
    assert key and key not in cookie and key[4:-7] not in cookie
    assert key not in repr(decoded) and key[4:-7] not in repr(decoded)
    assert not any(name.startswith(shown_once.SESSION_PREFIX) for name in
                   app.session_interface.get_signing_serializer(app).loads(session_cookie(client)))


def test_a_key_kept_longer_than_the_limit_is_not_shown(app, client, owner):
    with app.app_context():
        row, key = api_keys.create(owner.id, "Old", ["read_profile"])

    def sealed_in_session(age: int) -> None:
        with app.test_request_context():
            from flask import session
            shown_once.keep(NEW_KEY, {"id": row.public_id, "key": key}, now=time.time() - age)
            sealed = dict(session)
        with client.session_transaction() as browser_session:
            browser_session.update(sealed)

    sealed_in_session(age=shown_once.MAX_AGE_SECONDS - 30)
    assert shown_key(page_html(client)) == key
    sealed_in_session(age=shown_once.MAX_AGE_SECONDS + 1)
    assert shown_key(page_html(client)) is None


def test_a_key_revoked_before_it_was_shown_is_not_shown(app, client, owner):
    post_generate(client, name="Short-lived")
    with app.app_context():
        [row] = api_keys.list_for_user(owner.id)
        assert api_keys.revoke(owner.id, row.public_id)
    page = page_html(client)
    assert shown_key(page) is None and "Short-lived" not in page


def test_names_are_shown_as_text(client, owner):
    hostile = '<script>alert("key")</script><img src=x onerror=alert(1)>'
    page, _ = generate(client, name=hostile)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert str(escape(hostile)) in page
    assert hostile in text_of(page_html(client))


# -- generate: refused ------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, reason", [
    ({"name": ""}, "The name must be 1 to 100 printable characters."),
    ({"name": "   "}, "The name must be 1 to 100 printable characters."),
    ({"name": "x" * 101}, "The name must be 1 to 100 printable characters."),
    ({"name": "tab\there"}, "The name must be 1 to 100 printable characters."),
    ({"scopes": []}, "The scopes must be a non-empty list of: read_profile, write_data, read:users, write:data."),
    ({"scopes": ["keys:manage"]}, "The scopes must be a non-empty list of"),
    ({"scopes": ["read:users", "admin"]}, "The scopes must be a non-empty list of"),
    ({"expires": "7"}, "Choose when the key expires: never, or in 30, 90 or 365 days."),
    ({"expires": ""}, "Choose when the key expires"),
], ids=["empty-name", "blank-name", "101-characters", "control-character", "no-scope", "keys-manage",
        "unknown-scope", "unoffered-expiry", "no-expiry"])
def test_refused_input_says_why_and_stores_nothing(client, owner, database_url, fields, reason):
    csrf = csrf_token(page_html(client))
    with unchanged(database_url):
        response = post_generate(client, csrf=csrf, **fields)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert reason in text_of(page)
    assert "The key was not generated." in text_of(page)
    assert shown_key(page) is None
    # What was typed is kept, to correct it.
    if "name" in fields and fields["name"].strip():
        assert f'value="{escape(fields["name"])}"' in page


def test_a_name_of_100_characters_is_fine(app, client, owner):
    _, key = generate(client, name="x" * 100)
    assert usable(app, key).name == "x" * 100


def test_the_most_keys_an_account_may_have(app, client, owner, database_url):
    with app.app_context():
        for number in range(api_keys.MAX_KEYS_PER_ACCOUNT):
            api_keys.create(owner.id, f"key {number}", ["read_profile"])
    csrf = csrf_token(page_html(client))
    with unchanged(database_url):
        response = post_generate(client, csrf=csrf)
    assert response.status_code == 400
    assert f"An account may have at most {api_keys.MAX_KEYS_PER_ACCOUNT} active keys" in text_of(
        response.get_data(as_text=True))


@pytest.mark.parametrize("csrf", [None, "forged", "IjBjMWU3Y2E1ODJhNjEx.awy5HQ.1e-gGyf6o0Wac0QmXkWUUvLEmVw"],
                         ids=["missing", "garbage", "well-shaped-forgery"])
def test_generating_without_the_csrf_token_stores_nothing(client, owner, database_url, csrf):
    with unchanged(database_url):
        response = post_generate(client, csrf=csrf)
    assert response.status_code == 400
    assert "The form expired or did not come from this site." in response.get_data(as_text=True)


# -- rotate -----------------------------------------------------------------------------------------

def test_rotation_shows_the_new_key_once_and_both_keys_while_they_overlap(app, client, owner):
    _, old_key = generate(client, name="Deploy", scopes=["read:users"])
    old = usable(app, old_key)

    response = post_action(client, old.public_id, "rotate", grace="86400")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PAGE}#new-key"
    page = page_html(client)
    new_key = shown_key(page)
    assert new_key and new_key != old_key
    new = usable(app, new_key)
    assert (new.name, new.scopes, new.rotated_from_id) == ("Deploy", ["read:users"], old.id)
    old = usable(app, old_key)  # still works, for the grace period
    assert old is not None and abs(old.expires_at - (int(time.time()) + DAY)) <= 2
    assert WARNING in text_of(page)
    assert "Your rotated key: Deploy" in text_of(page)
    assert (f"It replaces {old_key[:10]}…{old_key[-4:]}, which keeps working until {utc(old.expires_at)}: switch "
            "your deployments before then.") in text_of(page)

    items = key_items(page_html(client))
    assert list(items) == [new.public_id, old.public_id]  # newest first
    assert f"Rotated — works until {utc(old.expires_at)}" in items[old.public_id]
    assert f"Replaces {old_key[:10]}…{old_key[-4:]}" in items[new.public_id]
    assert "Rotated" not in items[new.public_id] and "Active" in items[new.public_id]


def test_rotation_without_grace_retires_the_old_key_at_once(app, client, owner):
    _, old_key = generate(client)
    old = usable(app, old_key)
    post_action(client, old.public_id, "rotate", grace="0")
    page = page_html(client)
    new_key = shown_key(page)
    assert usable(app, old_key) is None and usable(app, new_key) is not None
    assert f"It replaces {old_key[:10]}…{old_key[-4:]}, which no longer works." in text_of(page)
    assert listed_ids(app, owner.id) == [usable(app, new_key).public_id]


@pytest.mark.parametrize("grace", ["604801", "999999999", "-1", "1800", "abc", ""])
def test_a_grace_period_not_offered_is_refused(app, client, owner, database_url, grace):
    _, key = generate(client)
    key_id = usable(app, key).public_id
    csrf = csrf_token(page_html(client))
    with unchanged(database_url):
        response = post_action(client, key_id, "rotate", csrf=csrf, grace=grace)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert ("The key was not rotated. Choose how long the old key keeps working: not at all, 1 hour, 24 hours or "
            "7 days.") in text_of(page)
    assert re.search(r'<details class="item-action" open>\s*<summary[^>]*>Rotate', page)  # beside its form
    assert shown_key(page) is None


def test_the_default_grace_period_is_24_hours(client, owner):
    generate(client)
    assert '<option selected value="86400">For 24 hours</option>' in page_html(client)


# -- revoke -----------------------------------------------------------------------------------------

def test_a_revoked_key_stops_working_and_leaves_the_list(app, client, owner):
    _, kept_key = generate(client, name="Kept")
    _, key = generate(client, name="Leaked <key>")
    row = usable(app, key)
    response = post_action(client, row.public_id, "revoke")
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert usable(app, key) is None and usable(app, kept_key) is not None
    page = page_html(client)
    assert f"Revoked “Leaked <key>” ({key[:10]}…{key[-4:]}). It no longer works" in text_of(page)
    assert list(key_items(page)) == [usable(app, kept_key).public_id]


def test_the_revoke_form_asks_for_confirmation(client, owner):
    generate(client, name="CI")
    text = text_of(page_html(client))
    assert "Revoke CI (" in text and "Anything that uses it stops working. This cannot be undone." in text


@pytest.mark.parametrize("action", ["rotate", "revoke"])
@pytest.mark.parametrize("csrf", [None, "forged"])
def test_rotating_or_revoking_without_the_csrf_token_stores_nothing(app, client, owner, database_url, action, csrf):
    _, key = generate(client)
    with unchanged(database_url):
        response = post_action(client, usable(app, key).public_id, action, csrf=csrf, grace="0")
    assert response.status_code == 400
    assert usable(app, key) is not None


# -- ids that are not the account's ---------------------------------------------------------------

@pytest.mark.parametrize("action", ["rotate", "revoke"])
def test_another_accounts_or_an_unknown_key_is_not_found(app, client, owner, make_user, database_url, action):
    stranger = make_user(email="eve@example.com")
    with app.app_context():
        theirs, their_key = api_keys.create(stranger.id, "Eve's key", ["read_profile"])
        gone, _ = api_keys.create(owner.id, "Revoked", ["read_profile"])
        api_keys.revoke(owner.id, gone.public_id)
    csrf = csrf_token(page_html(client))
    for key_id in (theirs.public_id, gone.public_id, "key_" + "0" * 24, "not-a-key-id", "key_%3Cscript%3E"):
        with unchanged(database_url):
            response = client.post(f"{PAGE}/{key_id}/{action}", data={"csrf_token": csrf, "grace": "86400"})
        assert response.status_code == 404, key_id
        assert "There is nothing at this address." in response.get_data(as_text=True)
    assert usable(app, their_key) is not None


def test_last_use_is_shown_in_utc(app, client, owner):
    _, key = generate(client)
    row = usable(app, key)
    used_at = 1_800_000_000  # 15 Jan 2027, 08:00 UTC
    with app.app_context():
        from authserver.storage.db import session
        session().execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=used_at))
        session().commit()
    assert "Last used 15 Jan 2027, 08:00 UTC" in key_items(page_html(client))[row.public_id]
