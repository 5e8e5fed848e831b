"""Token introspection (RFC 7662): a resource service learns whether a token is active right now
and, if so, what it stands for; of a token that is not active it learns `{"active": false}` and
nothing more. Only authenticated confidential clients may ask. Introspection never changes
anything stored: every request here runs inside `stored_state.unchanged`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from authserver.storage.models import RefreshToken, User

from ..conftest import ISSUER
from .stored_state import unchanged
from .token_world import (  # noqa: F401 (fixtures)
    ALL_SCOPES,
    BODY_CASES,
    EMAIL,
    FORGERIES,
    USER_SCOPE,
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

INTROSPECT = "/oauth/introspect"
INACTIVE = {"active": False}
REFRESH_TTL = 2592000  # AUTHSERVER_REFRESH_TOKEN_TTL default


def introspect(w: World, token: str, sender: Registered | None, *, how=None, encoding="form", **params):
    with unchanged(w.database_url):
        return post(w.api, INTROSPECT, sender, {"token": token, **params}, how=how, encoding=encoding)


def answer(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


# -- active tokens: what a resource service learns ------------------------------------------------


@pytest.mark.parametrize("encoding", ["form", "json"])
@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "something_else"])
def test_a_user_access_token_is_described(world, registered, encoding, hint):
    """The hint is a hint: a wrong or unknown one still finds the token (RFC 7662 §2.1)."""
    access_token = world.user_tokens(registered.main)["access_token"]
    claims = claims_of(access_token)
    params = {"token_type_hint": hint} if hint else {}
    body = answer(introspect(world, access_token, registered.resource, encoding=encoding, **params))
    assert body == {
        "active": True,
        "token_type": "Bearer",
        "scope": USER_SCOPE,  # RFC 7662 §2.2: a space-separated string, not the token's JSON array
        "client_id": registered.main.client_id,
        "sub": claims["sub"],
        "iss": ISSUER,
        "aud": claims["aud"],
        "jti": claims["jti"],
        "iat": claims["iat"],
        "exp": claims["exp"],
        "plan": "pro",
        "username": EMAIL,
    }
    assert claims["sub"].startswith("user_")


def test_a_client_credentials_token_is_described_without_an_account(world, registered):
    access_token = world.machine_token(registered.main)
    claims = claims_of(access_token)
    body = answer(introspect(world, access_token, registered.resource))
    assert body == {
        "active": True,
        "token_type": "Bearer",
        "scope": ALL_SCOPES,
        "client_id": registered.main.client_id,
        "sub": registered.main.client_id,
        "iss": ISSUER,
        "aud": claims["aud"],
        "jti": claims["jti"],
        "iat": claims["iat"],
        "exp": claims["exp"],
    }


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
@pytest.mark.parametrize("owner", ["main", "post"])
def test_a_refresh_token_is_described_to_the_client_it_was_issued_to(world, registered, owner, hint):
    client = getattr(registered, owner)
    tokens = world.user_tokens(client)
    params = {"token_type_hint": hint} if hint else {}
    body = answer(introspect(world, tokens["refresh_token"], client, **params))
    sub = claims_of(tokens["access_token"])["sub"]
    assert body == {
        "active": True,
        "token_type": "refresh_token",
        "scope": USER_SCOPE,
        "client_id": client.client_id,
        "sub": sub,
        "iss": ISSUER,
        "iat": body["iat"],
        "exp": body["iat"] + REFRESH_TTL,
        "plan": "pro",
        "username": EMAIL,
    }
    assert abs(body["iat"] - claims_of(tokens["access_token"])["iat"]) <= 1


# -- inactive: the same three words, whatever the reason ------------------------------------------


@dataclass(frozen=True)
class InactiveCase:
    name: str
    build: Callable[[World, Clients], tuple[str, Registered]]  # (token, introspecting client)


def forged(name: str) -> InactiveCase:
    def build(w: World, c: Clients):
        return FORGERIES[name](w, w.user_tokens(c.main)["access_token"]), c.resource
    return InactiveCase(f"access-token-{name}", build)


def revoked_access_token(w: World, c: Clients):
    access_token = w.user_tokens(c.main)["access_token"]
    response = post(w.api, "/oauth/revoke", c.main, {"token": access_token})
    assert response.status_code == 200, response.get_json()
    return access_token, c.resource


def access_token_of_a_disabled_client(w: World, c: Clients):
    client = w.register(name="Disabled Later")
    access_token = w.user_tokens(client)["access_token"]
    w.disable_client(client)
    return access_token, c.resource


def refresh_token(owner="main", *, introspector=None, spoil: dict | None = None, rotated=False,
                  revoked=False) -> Callable[[World, Clients], tuple[str, Registered]]:
    def build(w: World, c: Clients):
        client = getattr(c, owner)
        token = w.user_tokens(client)["refresh_token"]
        if rotated:
            w.rotate(client, token)
        if revoked:
            response = post(w.api, "/oauth/revoke", client, {"token": token})
            assert response.status_code == 200, response.get_json()
        if spoil:
            w.spoil_refresh_token(token, **spoil)
        return token, getattr(c, introspector or owner)
    return build


def successor_after_reuse(w: World, c: Clients):
    """The legitimate successor of a rotated token that was then replayed (family revoked)."""
    first = w.user_tokens(c.main)["refresh_token"]
    successor = w.rotate(c.main, first)["refresh_token"]
    w.spoil_refresh_token(first, used_at=RefreshToken.used_at - 3600)  # replayed after the grace window
    response = post(w.api, "/oauth/token", c.main, {"grant_type": "refresh_token", "refresh_token": first})
    assert response.status_code == 400, response.get_json()
    return successor, c.main


INACTIVE_CASES = [
    *(forged(name) for name in FORGERIES),
    InactiveCase("id-token-issued-with-the-access-token", lambda w, c: (w.user_tokens(c.main)["id_token"], c.resource)),
    InactiveCase("access-token-revoked", revoked_access_token),
    InactiveCase("access-token-of-a-disabled-client", access_token_of_a_disabled_client),
    InactiveCase("refresh-token-unknown", lambda w, c: ("tdr_" + secrets.token_urlsafe(32), c.main)),
    InactiveCase("refresh-token-rotated", refresh_token(rotated=True)),
    InactiveCase("refresh-token-revoked", refresh_token(revoked=True)),
    InactiveCase("refresh-token-expired", refresh_token(spoil={"expires_at": 1})),
    InactiveCase("refresh-token-successor-of-a-replayed-one", successor_after_reuse),
    # RFC 7662 §2.2: a token the caller may not know about is simply not active.
    InactiveCase("refresh-token-of-another-client", refresh_token(introspector="other")),
    InactiveCase("refresh-token-introspected-by-a-resource-service", refresh_token(introspector="resource")),
    InactiveCase("whitespace", lambda w, c: (" ", c.resource)),
    InactiveCase("nul", lambda w, c: ("\x00", c.resource)),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in INACTIVE_CASES])
def test_inactive_tokens_get_active_false_and_nothing_else(world, registered, case):
    token, introspector = case.build(world, registered)
    assert answer(introspect(world, token, introspector)) == INACTIVE


def test_a_disabled_account_makes_its_tokens_inactive_until_enabled_again(world, registered):
    tokens = world.user_tokens(registered.main)
    world.disable_user()
    try:
        assert answer(introspect(world, tokens["access_token"], registered.resource)) == INACTIVE
        assert answer(introspect(world, tokens["refresh_token"], registered.main)) == INACTIVE
    finally:
        world.enable_user()
    assert answer(introspect(world, tokens["access_token"], registered.resource))["active"] is True
    assert answer(introspect(world, tokens["refresh_token"], registered.main))["active"] is True


def test_the_plan_is_the_accounts_current_one(world, registered):
    access_token = world.user_tokens(registered.main)["access_token"]
    assert claims_of(access_token)["plan"] == "pro"
    world.execute(update(User).where(User.id == world.user_id).values(plan="enterprise"))
    try:
        assert answer(introspect(world, access_token, registered.resource))["plan"] == "enterprise"
    finally:
        world.execute(update(User).where(User.id == world.user_id).values(plan="pro"))


# -- who may ask ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerCase:
    name: str
    send: Callable[[World, Clients, str], object]  # (world, clients, token) -> response


def as_sender(sender: str, how: str | None = None, **overrides) -> Callable:
    def send(w: World, c: Clients, token: str):
        registered_sender = getattr(c, sender)
        if overrides:
            registered_sender = Registered(**{**registered_sender.__dict__, **overrides})
        return introspect(w, token, registered_sender, how=how)
    return send


def with_headers(headers: dict) -> Callable:
    def send(w: World, c: Clients, token: str):
        with unchanged(w.database_url):
            return w.api.post(INTROSPECT, data={"token": token}, headers=headers)
    return send


CALLER_CASES = [
    # RFC 7662 §2.1: the endpoint MUST require authorization; §2.3 / RFC 6749 §5.2 invalid_client.
    CallerCase("no-client-authentication", lambda w, c, t: introspect(w, t, None)),
    CallerCase("public-client-with-its-client-id", as_sender("public")),
    CallerCase("public-client-with-basic-and-no-secret", as_sender("public", "basic", secret="")),
    CallerCase("public-client-with-a-made-up-secret", as_sender("public", "post", secret="tds_made_up")),
    CallerCase("confidential-client-with-only-its-client-id", as_sender("resource", "none")),
    CallerCase("secret-wrong", lambda w, c, t: as_sender("resource", secret=c.main.secret)(w, c, t)),
    CallerCase("secret-empty", as_sender("resource", secret="")),
    CallerCase("client-unknown", as_sender("resource", client_id="client_unknown")),
    CallerCase("client-id-with-nul", lambda w, c, t: as_sender("resource", client_id=c.resource.client_id + "\x00")(w, c, t)),
    CallerCase("secret-in-body-for-a-basic-client", as_sender("resource", "post")),
    CallerCase("basic-for-a-client-secret-post-client", as_sender("post", "basic")),
    CallerCase("basic-not-base64", with_headers({"Authorization": "Basic %%%not-base64"})),
    CallerCase("basic-not-utf8", with_headers({"Authorization": "Basic //46/w=="})),
    CallerCase("bearer-instead-of-client-authentication",
               lambda w, c, t: with_headers({"Authorization": f"Bearer {t}"})(w, c, t)),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CALLER_CASES])
def test_only_authenticated_confidential_clients_may_introspect(world, registered, case):
    access_token = world.user_tokens(registered.main)["access_token"]
    response = case.send(world, registered, access_token)
    body = assert_oauth_error(response, 401, "invalid_client")
    assert "active" not in body


def test_a_disabled_client_may_not_introspect(world, registered):
    service = world.register(name="Retired Service", grant_types=("client_credentials",))
    access_token = world.user_tokens(registered.main)["access_token"]
    assert answer(introspect(world, access_token, service))["active"] is True  # control
    world.disable_client(service)
    assert_oauth_error(introspect(world, access_token, service), 401, "invalid_client")


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in BODY_CASES])
def test_bad_requests_are_refused_and_store_nothing(world, registered, case):
    with unchanged(world.database_url):
        response = send_raw(world.api, INTROSPECT, case.build(registered.resource))
    assert_oauth_error(response, case.status, "invalid_request")
