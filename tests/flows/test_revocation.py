"""Token revocation (RFC 7009): a client ends a grant (refresh token: its whole family) or one access
token (by jti, on the deny list until it expires). Unknown, invalid and already revoked tokens
answer 200 and change nothing; a token of another client is refused and stays valid. Each test
asserts exactly what was stored, or that nothing was (`stored_state`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
from sqlalchemy.orm import Session

from authserver.credentials import digest
from authserver.storage import access_tokens
from authserver.storage.models import RefreshToken

from .stored_state import differences, snapshot, unchanged
from .token_world import (  # noqa: F401 (fixtures)
    BODY_CASES,
    FORGERIES,
    Clients,
    Registered,
    World,
    assert_oauth_error,
    claims_of,
    post,
    registered,
    send_raw,
    world,
)

REVOKE = "/oauth/revoke"


def revoke(w: World, token: str, sender: Registered | None, *, how=None, encoding="form", **params):
    return post(w.api, REVOKE, sender, {"token": token, **params}, how=how, encoding=encoding)


def assert_revoked_response(response) -> None:
    """RFC 7009 §2.2: 200; the body carries nothing (an empty JSON object), and no caching."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json() == {}
    assert response.headers["Cache-Control"] == "no-store"


def is_active(w: World, c: Clients, token: str, introspector: Registered | None = None) -> bool:
    response = post(w.api, "/oauth/introspect", introspector or c.resource, {"token": token})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["active"]


def refresh(w: World, sender: Registered, token: str):
    return post(w.api, "/oauth/token", sender, {"grant_type": "refresh_token", "refresh_token": token})


def refresh_rows(changed: dict) -> tuple[list[dict], list[dict]]:
    columns = [column.name for column in RefreshToken.__table__.columns]
    rows = changed.get("refresh_tokens", {"removed": [], "added": []})
    return ([dict(zip(columns, row)) for row in rows["removed"]], [dict(zip(columns, row)) for row in rows["added"]])


# -- revocation works ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["form", "json"])
@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "something_else"])
@pytest.mark.parametrize("sender", ["main", "post", "public"])
def test_a_revoked_access_token_is_denied_until_it_expires(world, registered, sender, hint, encoding):
    client = getattr(registered, sender)
    access_token = world.user_tokens(client)["access_token"]
    sibling = world.user_tokens(client)["access_token"]
    claims = claims_of(access_token)
    assert is_active(world, registered, access_token)  # control

    params = {"token_type_hint": hint} if hint else {}
    before = snapshot(world.database_url)
    assert_revoked_response(revoke(world, access_token, client, encoding=encoding, **params))

    # Exactly one row: the token's jti, kept until the token's own exp.
    assert differences(before, snapshot(world.database_url)) == {
        "revoked_access_tokens": {"removed": [], "added": [(claims["jti"], claims["exp"])]}
    }
    assert not is_active(world, registered, access_token)
    assert is_active(world, registered, sibling)  # only that token


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
@pytest.mark.parametrize("which", ["current", "rotated", "first"])
@pytest.mark.parametrize("sender", ["main", "post", "public"])
def test_a_revoked_refresh_token_ends_its_whole_family(world, registered, sender, which, hint):
    client = getattr(registered, sender)
    first = world.user_tokens(client)
    second = world.rotate(client, first["refresh_token"])
    current = world.rotate(client, second["refresh_token"])
    other_family = world.user_tokens(client)["refresh_token"]
    family = [first["refresh_token"], second["refresh_token"], current["refresh_token"]]
    presented = {"first": family[0], "rotated": family[1], "current": family[2]}[which]

    params = {"token_type_hint": hint} if hint else {}
    before = snapshot(world.database_url)
    assert_revoked_response(revoke(world, presented, client, **params))

    # RFC 7009 §2.1: revoking a refresh token ends the grant; here every token of the family,
    # and nothing else, gets revoked_at (the other family of the same client and user is intact),
    # and the access tokens issued with them go on the deny list.
    changed = differences(before, snapshot(world.database_url))
    assert set(changed) == {"refresh_tokens", "revoked_access_tokens"}, changed
    denied = {row[0] for row in changed["revoked_access_tokens"]["added"]}
    assert denied == {jwt.decode(t["access_token"], options={"verify_signature": False})["jti"]
                      for t in (first, second, current)}
    removed, added = refresh_rows(changed)
    assert {row["digest"] for row in added} == {digest(token) for token in family}
    assert all(row["revoked_at"] is None for row in removed)
    assert all(row["revoked_at"] is not None for row in added)
    strip = lambda row: {k: v for k, v in row.items() if k != "revoked_at"}  # noqa: E731
    assert sorted(map(strip, removed), key=lambda r: r["id"]) == sorted(map(strip, added), key=lambda r: r["id"])

    with unchanged(world.database_url):
        assert_oauth_error(refresh(world, client, current["refresh_token"]), 400, "invalid_grant")
    if sender != "public":
        assert not is_active(world, registered, current["refresh_token"], client)
    assert refresh(world, client, other_family).status_code == 200  # control: the other grant lives on


def test_the_access_tokens_of_a_revoked_grant_are_revoked_too(world, registered):
    """RFC 7009 §2.1 SHOULD: each refresh token records the access token issued with it."""
    tokens = world.user_tokens(registered.main)
    rotated = world.rotate(registered.main, tokens["refresh_token"])
    assert is_active(world, registered, tokens["access_token"])
    assert_revoked_response(revoke(world, rotated["refresh_token"], registered.main))
    assert not is_active(world, registered, tokens["access_token"])
    assert not is_active(world, registered, rotated["access_token"])


# -- 200 and no change: unknown, invalid and already revoked tokens ---------------------------------


@dataclass(frozen=True)
class NoOpCase:
    name: str
    # (world, clients) -> (token to revoke, sender, genuine token that must stay active or None)
    build: Callable[[World, Clients], tuple[str, Registered, str | None]]


def forged(name: str) -> NoOpCase:
    """A forgery of the sender's own genuine access token: it must not revoke the genuine one,
    whose jti it carries."""
    def build(w: World, c: Clients):
        genuine = w.user_tokens(c.main)["access_token"]
        return FORGERIES[name](w, genuine), c.main, genuine
    return NoOpCase(f"access-token-{name}", build)


def revoked_twice(kind: str) -> Callable:
    def build(w: World, c: Clients):
        token = w.user_tokens(c.main)[kind]
        assert_revoked_response(revoke(w, token, c.main))
        return token, c.main, None
    return build


def expired_refresh_token_of_a_revoked_family(w: World, c: Clients):
    token = w.user_tokens(c.main)["refresh_token"]
    assert_revoked_response(revoke(w, token, c.main))
    w.spoil_refresh_token(token, expires_at=1)
    return token, c.main, None


NO_OP_CASES = [
    *(forged(name) for name in FORGERIES),
    NoOpCase("id-token", lambda w, c: (w.user_tokens(c.main)["id_token"], c.main, None)),
    NoOpCase("refresh-token-unknown", lambda w, c: ("tdr_" + secrets.token_urlsafe(32), c.main, None)),
    NoOpCase("refresh-token-very-long", lambda w, c: ("tdr_" + "x" * 5000, c.main, None)),
    NoOpCase("whitespace", lambda w, c: (" ", c.main, None)),
    NoOpCase("nul", lambda w, c: ("\x00", c.main, None)),
    NoOpCase("access-token-already-revoked", revoked_twice("access_token")),
    NoOpCase("refresh-token-already-revoked", revoked_twice("refresh_token")),
    NoOpCase("refresh-token-already-revoked-and-expired", expired_refresh_token_of_a_revoked_family),
    NoOpCase("unknown-token-sent-by-a-public-client", lambda w, c: ("tdr_unknown", c.public, None)),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in NO_OP_CASES])
def test_invalid_and_already_revoked_tokens_answer_200_and_change_nothing(world, registered, case):
    """RFC 7009 §2.2: "invalid tokens do not cause an error response"."""
    token, sender, genuine = case.build(world, registered)
    with unchanged(world.database_url):
        assert_revoked_response(revoke(world, token, sender))
    if genuine is not None:
        assert is_active(world, registered, genuine)


# -- refused: a token of another client ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
@pytest.mark.parametrize(("owner", "sender"), [("main", "other"), ("main", "public"), ("public", "main"),
                                                ("main", "resource")])
def test_a_token_of_another_client_is_refused_and_stays_valid(world, registered, owner, sender, kind):
    """RFC 7009 §2.1: the server "verifies whether the token was issued to the client making the
    revocation request. If this validation fails, the request is refused"; RFC 6749 §5.2
    invalid_grant: "... or was issued to another client"."""
    owning = getattr(registered, owner)
    token = world.user_tokens(owning)[kind]
    with unchanged(world.database_url):
        assert_oauth_error(revoke(world, token, getattr(registered, sender)), 400, "invalid_grant")
    if kind == "access_token":
        assert is_active(world, registered, token)
    else:
        assert refresh(world, owning, token).status_code == 200


# -- refused: client authentication ----------------------------------------------------------------


def as_sender(sender: str, how: str | None = None, **overrides) -> Callable:
    def send(w: World, c: Clients, token: str):
        registered_sender = getattr(c, sender)
        if overrides:
            registered_sender = Registered(**{**registered_sender.__dict__, **overrides})
        return revoke(w, token, registered_sender, how=how)
    return send


AUTHENTICATION_CASES = {
    "no-client-authentication": lambda w, c, t: revoke(w, t, None),
    "confidential-client-with-only-its-client-id": as_sender("main", "none"),
    "secret-wrong": lambda w, c, t: as_sender("main", secret=c.other.secret)(w, c, t),
    "secret-empty": as_sender("main", secret=""),
    "client-unknown": as_sender("main", client_id="client_unknown"),
    "client-id-with-nul": lambda w, c, t: as_sender("main", client_id=c.main.client_id + "\x00")(w, c, t),
    "secret-in-body-for-a-basic-client": as_sender("main", "post"),
    "basic-for-a-client-secret-post-client": as_sender("post", "basic"),
    "public-client-with-a-made-up-secret": as_sender("public", "post", secret="tds_made_up"),
    "public-client-unknown": as_sender("public", client_id="client_unknown"),
    "basic-not-base64": lambda w, c, t: w.api.post(REVOKE, data={"token": t},
                                                   headers={"Authorization": "Basic %%%not-base64"}),
    "basic-not-utf8": lambda w, c, t: w.api.post(REVOKE, data={"token": t}, headers={"Authorization": "Basic //46/w=="}),
}


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
@pytest.mark.parametrize("name", list(AUTHENTICATION_CASES))
def test_failed_client_authentication_is_refused_and_revokes_nothing(world, registered, name, kind):
    owner = registered.post if name == "basic-for-a-client-secret-post-client" else registered.main
    if name == "public-client-with-a-made-up-secret":
        owner = registered.public
    token = world.user_tokens(owner)[kind]
    with unchanged(world.database_url):
        assert_oauth_error(AUTHENTICATION_CASES[name](world, registered, token), 401, "invalid_client")
    assert (is_active(world, registered, token) if kind == "access_token"
            else refresh(world, owner, token).status_code == 200)


def test_a_disabled_client_cannot_revoke(world, registered):
    client = world.register(name="Disabled Later")
    token = world.user_tokens(client)["access_token"]
    world.disable_client(client)
    with unchanged(world.database_url):
        assert_oauth_error(revoke(world, token, client), 401, "invalid_client")


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in BODY_CASES])
def test_bad_requests_are_refused_and_store_nothing(world, registered, case):
    with unchanged(world.database_url):
        response = send_raw(world.api, REVOKE, case.build(registered.main))
    assert_oauth_error(response, case.status, "invalid_request")


# -- the deny list under concurrency ---------------------------------------------------------------


def test_a_concurrent_revocation_of_the_same_token_is_not_an_error(world, monkeypatch):
    """Two revocations of one token can both miss the row and both insert it; the second commit
    then meets the primary key. That must end as a revoked token, not a 500."""
    jti = secrets.token_urlsafe(16)
    with world.app.app_context():
        access_tokens.deny_and_commit(jti, 2_000_000_000)
    before = snapshot(world.database_url)
    monkeypatch.setattr(Session, "get", lambda *args, **kwargs: None)  # the race: the row looks absent
    with world.app.app_context():
        access_tokens.deny_and_commit(jti, 2_000_000_000)
    assert snapshot(world.database_url) == before
