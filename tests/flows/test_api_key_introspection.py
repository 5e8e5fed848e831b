"""Introspection of API keys (RFC 7662): a resource service learns whether a key works right now,
whose it is and what it may do; of a key that does not work it learns `{"active": false}` and
nothing more. An active answer counts as a use of the key, written in batches: introspection
stores nothing until the buffer's interval has passed."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, event, select, update

from authserver.resource.api_key_format import new_api_key
from authserver.storage import api_keys
from authserver.storage.db import session
from authserver.storage.models import ApiKey, User

from ..conftest import ISSUER
from .stored_state import differences, snapshot, unchanged
from .token_world import EMAIL, World, assert_oauth_error, post, registered, world  # noqa: F401 (fixtures)

INTROSPECT = "/oauth/introspect"
INACTIVE = {"active": False}
DAY = 86400


@pytest.fixture(autouse=True)
def unflushed_uses(world, monkeypatch):
    """No key is left from another test, and the last-use buffer is not written unless a test
    says so (an introspection must store nothing)."""
    world.execute(delete(ApiKey))
    monkeypatch.setattr(api_keys, "FLUSH_INTERVAL_SECONDS", 3600)


def new_key(w: World, scopes=("read_profile", "write:data"), expires_at=None) -> tuple[ApiKey, str]:
    with w.app.app_context():
        return api_keys.create(w.user_id, "service key", list(scopes), expires_at)


def rotated(w: World, row: ApiKey, grace_seconds: int) -> tuple[ApiKey, str]:
    with w.app.app_context():
        return api_keys.rotate(w.user_id, row.public_id, grace_seconds)


def introspect(w: World, sender, key: str, **params):
    with unchanged(w.database_url):
        response = post(w.api, INTROSPECT, sender, {"token": key, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def user_public_id(w: World) -> str:
    with w.app.app_context():
        return session().get(User, w.user_id).public_id


def stored_row(w: World, public_id: str) -> ApiKey:
    with w.app.app_context():
        return session().scalar(select(ApiKey).where(ApiKey.public_id == public_id))


# -- active ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("hint", [None, "api_key", "access_token", "refresh_token", "something_else"])
def test_a_key_is_described_to_any_resource_service(world, registered, hint):
    """The hint is a hint: a wrong or unknown one still finds the key (RFC 7662 §2.1)."""
    row, key = new_key(world)
    params = {"token_type_hint": hint} if hint else {}
    assert introspect(world, registered.resource, key, **params) == {
        "active": True,
        "token_type": "api_key",
        "scope": "read_profile write:data",
        "sub": user_public_id(world),
        "key_id": row.public_id,
        "iss": ISSUER,
        "iat": row.created_at,
        "plan": "pro",
        "username": EMAIL,
    }
    assert introspect(world, registered.other, key)["active"] is True  # any confidential client


def test_a_key_with_an_expiry_says_when(world, registered):
    expires_at = int(time.time()) + 30 * DAY
    _, key = new_key(world, expires_at=expires_at)
    assert introspect(world, registered.resource, key)["exp"] == expires_at


def test_the_account_is_described_as_it_is_now(world, registered):
    _, key = new_key(world)
    world.execute(update(User).where(User.id == world.user_id)
                  .values(plan="enterprise", rate_limit_per_hour=50000, rate_limit_per_minute=900))
    try:
        body = introspect(world, registered.resource, key)
    finally:
        world.execute(update(User).where(User.id == world.user_id)
                      .values(plan="pro", rate_limit_per_hour=None, rate_limit_per_minute=None))
    assert body["plan"] == "enterprise"
    assert body["rate_limits"] == {"per_hour": 50000, "per_minute": 900}


def test_both_keys_work_during_the_grace_period(world, registered):
    old_row, old_key = new_key(world)
    new_row, new_key_ = rotated(world, old_row, 3600)
    old, new = introspect(world, registered.resource, old_key), introspect(world, registered.resource, new_key_)
    assert old["active"] and old["key_id"] == old_row.public_id
    assert old_row.created_at + 3600 <= old["exp"] <= int(time.time()) + 3600
    assert new["active"] and new["key_id"] == new_row.public_id and "exp" not in new
    assert new["scope"] == old["scope"]


# -- inactive -------------------------------------------------------------------------------------

def _rotated_past_grace(w: World) -> str:
    row, key = new_key(w)
    rotated(w, row, 0)
    return key


def _spoiled(**values):
    def build(w: World) -> str:
        row, key = new_key(w)
        w.execute(update(ApiKey).where(ApiKey.id == row.id).values(**values))
        return key
    return build


def _revoked(w: World) -> str:
    row, key = new_key(w)
    with w.app.app_context():
        assert api_keys.revoke(w.user_id, row.public_id)
    return key


def _one_character_changed(w: World) -> str:
    _, key = new_key(w)
    middle = len(key) // 2
    return key[:middle] + ("A" if key[middle] != "A" else "B") + key[middle + 1:]


INACTIVE_CASES = {
    "rotated-past-its-grace-period": _rotated_past_grace,
    "revoked": _revoked,
    "expired": _spoiled(expires_at=int(time.time()) - 1),
    "unknown": lambda w: new_api_key(),  # well-formed, never issued
    "mistyped": _one_character_changed,  # the checksum catches it
    "truncated": lambda w: new_key(w)[1][:-1],
    "lower-cased": lambda w: new_key(w)[1].lower(),
    "prefix-only": lambda w: "tdk_",
    "digest-of-a-key": lambda w: new_key(w)[0].key_digest,
}


@pytest.mark.parametrize("case", INACTIVE_CASES)
def test_a_key_that_does_not_work_is_inactive_and_nothing_more(world, registered, case):
    key = INACTIVE_CASES[case](world)
    for hint in (None, "api_key"):
        params = {"token_type_hint": hint} if hint else {}
        assert introspect(world, registered.resource, key, **params) == INACTIVE


def test_a_malformed_key_costs_no_lookup(world):
    mistyped = _one_character_changed(world)
    statements = []
    with world.app.app_context():
        engine = session().get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731 (the statement)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert api_keys.find_usable(mistyped) is None
            assert statements == []
            assert api_keys.find_usable(new_api_key()) is None  # control: well-formed, so looked up
            assert len(statements) == 1
        finally:
            event.remove(engine, "before_cursor_execute", listener)


def test_a_disabled_account_makes_its_keys_inactive_until_enabled_again(world, registered):
    _, key = new_key(world)
    world.disable_user()
    try:
        assert introspect(world, registered.resource, key) == INACTIVE
    finally:
        world.enable_user()
    assert introspect(world, registered.resource, key)["active"] is True


def test_only_authenticated_confidential_clients_may_introspect_keys(world, registered):
    _, key = new_key(world)
    for sender, how in ((None, None), (registered.public, None), (registered.resource, "none")):
        with unchanged(world.database_url):
            response = post(world.api, INTROSPECT, sender, {"token": key}, how=how)
        assert "active" not in assert_oauth_error(response, 401, "invalid_client")


# -- last used ------------------------------------------------------------------------------------

def test_the_last_use_is_written_once_the_interval_has_passed(world, registered, monkeypatch):
    row, key = new_key(world)
    first_use = int(time.time())
    introspect(world, registered.resource, key)  # buffered: `introspect` asserts nothing stored
    assert stored_row(world, row.public_id).last_used_at is None

    monkeypatch.setattr(api_keys, "FLUSH_INTERVAL_SECONDS", 0)
    before = snapshot(world.database_url)
    response = post(world.api, INTROSPECT, registered.resource, {"token": key})
    assert response.get_json()["active"] is True
    changed = differences(before, snapshot(world.database_url))
    assert set(changed) == {"api_keys"} and len(changed["api_keys"]["added"]) == 1
    last_used_at = stored_row(world, row.public_id).last_used_at
    assert first_use <= last_used_at <= time.time()


def test_an_inactive_answer_is_no_use(world, registered, monkeypatch):
    monkeypatch.setattr(api_keys, "FLUSH_INTERVAL_SECONDS", 0)
    key = _revoked(world)
    assert introspect(world, registered.resource, key) == INACTIVE  # `introspect` asserts nothing stored
