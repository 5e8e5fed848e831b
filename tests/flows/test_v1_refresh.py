"""`POST /v1/auth/refresh`: the token endpoint's refresh_token grant behind the product's JSON API.
Same answer, same rotation, same reuse detection; every error is the envelope
`{"error": {"code", "message", "status"}}` with DESIGN.md's codes, and a refused request changes
nothing stored (`stored_state.unchanged`), except a replayed token, which revokes its family by
design."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from flask import abort
from sqlalchemy import update

from authserver.app import create_app
from authserver.credentials import digest
from authserver.storage.models import Client, RefreshToken

from ..helpers import assert_envelope as envelope
from .stored_state import differences, snapshot, unchanged
from .token_world import (  # noqa: F401 (fixtures)
    CHUNKED,
    DEEP,
    FORM,
    JSON,
    MAX_BODY,
    USER_SCOPE,
    Clients,
    Registered,
    World,
    assert_oauth_error,
    post,
    registered,
    world,
)

REFRESH = "/v1/auth/refresh"
CODES = {"INVALID_REQUEST": 400, "INVALID_TOKEN": 401, "TOKEN_EXPIRED": 401, "INVALID_CLIENT": 401,
         "NOT_FOUND": 404, "INTERNAL_ERROR": 500}


def assert_envelope(response, status: int, code: str) -> str:
    """The envelope (tests/helpers.py), and the challenge a 401 carries; returns the message."""
    message = envelope(response, status, code)["error"]["message"]
    challenge = response.headers.get("WWW-Authenticate", "")
    if code == "INVALID_CLIENT":
        # Client credentials go in HTTP Basic: the challenge names that scheme (RFC 6749 §5.2).
        assert challenge.startswith('Basic realm="'), challenge
    elif status == 401:
        assert challenge.startswith('Bearer realm="') and 'error="invalid_token"' in challenge, challenge
    else:
        assert not challenge
    return message


def v1_refresh(w: World, token: str, sender: Registered | None = None, *, how: str | None = None, **fields):
    """{"refresh_token"} as JSON, `sender` authenticating as registered (None: no credentials)."""
    return post(w.api, REFRESH, sender, {"refresh_token": token, **fields}, how=how, encoding="json")


def token_endpoint_refresh(w: World, sender: Registered, token: str):
    return post(w.api, "/oauth/token", sender, {"grant_type": "refresh_token", "refresh_token": token})


# -- it refreshes, exactly as the token endpoint does ----------------------------------------------


@pytest.mark.parametrize("sender", ["public", "main", "post"])
def test_refresh_answers_what_the_token_endpoint_answers(world, registered, sender):
    """Public clients send the token alone; confidential ones authenticate as registered."""
    client = getattr(registered, sender)
    ours = world.user_tokens(client)["refresh_token"]
    theirs = world.user_tokens(client)["refresh_token"]
    credentials = None if sender == "public" else client
    before = snapshot(world.database_url)
    response = v1_refresh(world, ours, credentials)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    # Rotation: the presented token is marked used, one successor is stored in its family.
    changed = differences(before, snapshot(world.database_url))
    assert set(changed) == {"refresh_tokens"}, changed
    columns = [column.name for column in RefreshToken.__table__.columns]
    (old,), added = changed["refresh_tokens"]["removed"], changed["refresh_tokens"]["added"]
    added = {dict(zip(columns, row))["digest"]: dict(zip(columns, row)) for row in added}
    assert set(added) == {digest(ours), digest(body["refresh_token"])}
    assert dict(zip(columns, old))["used_at"] is None and added[digest(ours)]["used_at"] is not None
    assert added[digest(body["refresh_token"])]["family"] == dict(zip(columns, old))["family"]

    reference = token_endpoint_refresh(world, client, theirs).get_json()
    assert set(body) == set(reference), (body, reference)
    assert body["token_type"] == "Bearer" and body["scope"] == USER_SCOPE
    assert body["expires_in"] == reference["expires_in"]
    assert body["refresh_token"] != ours

    # The successor is an ordinary refresh token: the token endpoint takes it.
    assert token_endpoint_refresh(world, client, body["refresh_token"]).status_code == 200


@pytest.mark.parametrize("first_use", ["v1", "token-endpoint"])
def test_a_replayed_token_is_refused_and_revokes_its_family(world, registered, first_use):
    """The token endpoint's reuse detection, whichever endpoint rotated the token first."""
    client = registered.public
    first = world.user_tokens(client)["refresh_token"]
    rotated = (v1_refresh(world, first) if first_use == "v1" else token_endpoint_refresh(world, client, first))
    assert rotated.status_code == 200, rotated.get_json()
    successor = rotated.get_json()["refresh_token"]
    world.spoil_refresh_token(first, used_at=RefreshToken.used_at - 3600)  # replayed after the grace window

    before = snapshot(world.database_url)
    assert_envelope(v1_refresh(world, first), 401, "INVALID_TOKEN")
    changed = differences(before, snapshot(world.database_url))
    # The family's refresh tokens are revoked, and the two access tokens issued with them denied.
    assert set(changed) == {"refresh_tokens", "revoked_access_tokens"}, changed
    assert len(changed["revoked_access_tokens"]["added"]) == 2
    revoked_at = [column.name for column in RefreshToken.__table__.columns].index("revoked_at")
    assert {row[revoked_at] is None for row in changed["refresh_tokens"]["removed"]} == {True}
    assert {row[revoked_at] is not None for row in changed["refresh_tokens"]["added"]} == {True}
    assert len(changed["refresh_tokens"]["added"]) == 2  # the replayed token and its successor

    with unchanged(world.database_url):
        assert_envelope(v1_refresh(world, successor), 401, "INVALID_TOKEN")
        assert_oauth_error(token_endpoint_refresh(world, client, successor), 400, "invalid_grant")


@pytest.mark.parametrize("sender", ["public", "main"])
def test_a_token_revoked_at_the_revocation_endpoint_cannot_refresh_here(world, registered, sender):
    client = getattr(registered, sender)
    tokens = world.user_tokens(client)
    successor = world.rotate(client, tokens["refresh_token"])["refresh_token"]
    response = post(world.api, "/oauth/revoke", client, {"token": tokens["refresh_token"]})
    assert response.status_code == 200, response.get_json()
    credentials = None if sender == "public" else client
    with unchanged(world.database_url):
        assert_envelope(v1_refresh(world, successor, credentials), 401, "INVALID_TOKEN")
        assert_envelope(v1_refresh(world, tokens["refresh_token"], credentials), 401, "INVALID_TOKEN")


# -- refused, and nothing stored ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[World, Clients], object]  # -> response
    code: str


def fresh(owner: str = "main", *, sender: str | None = "owner", how: str | None = None, spoil: dict | None = None,
          secret_of: str | None = None, secret: str | None = None, **fields) -> Callable:
    """A fresh refresh token of `owner` (its row then spoiled with `spoil`), sent by `sender`
    ("owner", another client's name, or None for no credentials) with `fields` in the JSON; the
    sender's secret replaced by `secret` or by the secret of client `secret_of`."""
    def send(w: World, c: Clients):
        client = getattr(c, owner)
        token = w.user_tokens(client)["refresh_token"]
        if spoil:
            w.spoil_refresh_token(token, **spoil)
        credentials = client if sender == "owner" else (getattr(c, sender) if sender else None)
        if secret or secret_of:
            credentials = replace(credentials, secret=secret or getattr(c, secret_of).secret)
        with unchanged(w.database_url):
            return v1_refresh(w, token, credentials, how=how, **fields)
    return send


def literal(token: str, sender: str | None = None) -> Callable:
    def send(w: World, c: Clients):
        with unchanged(w.database_url):
            return v1_refresh(w, token, getattr(c, sender) if sender else None)
    return send


def access_token_as_refresh_token(w: World, c: Clients):
    access_token = w.user_tokens(c.public)["access_token"]
    with unchanged(w.database_url):
        return v1_refresh(w, access_token)


def truncated(w: World, c: Clients):
    token = w.user_tokens(c.public)["refresh_token"]
    with unchanged(w.database_url):
        return v1_refresh(w, token[:-1])


def disabled_account(w: World, c: Clients):
    token = w.user_tokens(c.public)["refresh_token"]
    w.disable_user()
    try:
        with unchanged(w.database_url):
            return v1_refresh(w, token)
    finally:
        w.enable_user()


def client_lost_the_grant(w: World, c: Clients):
    client = w.register(name="Narrowed Later")
    token = w.user_tokens(client)["refresh_token"]
    w.execute(update(Client).where(Client.id == client.row_id).values(grant_types=["authorization_code"]))
    with unchanged(w.database_url):
        return v1_refresh(w, token, client)


def disabled_client(public: bool) -> Callable:
    def send(w: World, c: Clients):
        client = w.register(name="Disabled Later", public=public)
        token = w.user_tokens(client)["refresh_token"]
        w.disable_client(client)
        with unchanged(w.database_url):
            return v1_refresh(w, token, None if public else client)
    return send


def raw(body, content_type: str | None = JSON, **arguments) -> Callable:
    def send(w: World, c: Clients):
        sent = {"data": body, **arguments} if body is not None else dict(arguments)
        if content_type:
            sent["content_type"] = content_type
        if "input_stream" in sent:
            sent["input_stream"].seek(0)
        with unchanged(w.database_url):
            return w.api.open(REFRESH, method=sent.pop("method", "POST"), **sent)
    return send


def with_refresh_token(build_body: Callable[[str], str], content_type: str = JSON, **arguments) -> Callable:
    """A raw body around a genuine token of the public client."""
    def send(w: World, c: Clients):
        token = w.user_tokens(c.public)["refresh_token"]
        return raw(build_body(token), content_type, **arguments)(w, c)
    return send


EXPIRED = {"expires_at": 1}

CASES = [
    # -- the client: confidential clients authenticate as they are registered
    Case("confidential-without-credentials", fresh(sender=None), "INVALID_CLIENT"),
    Case("confidential-with-only-its-client-id", fresh(how="none"), "INVALID_CLIENT"),
    Case("confidential-secret-wrong", fresh(secret_of="other"), "INVALID_CLIENT"),
    Case("confidential-secret-empty", fresh(secret=" "), "INVALID_CLIENT"),
    Case("client-secret-post-secret-wrong", fresh("post", secret_of="main"), "INVALID_CLIENT"),
    Case("secret-in-json-for-a-basic-client", fresh(how="post"), "INVALID_CLIENT"),
    Case("basic-for-a-client-secret-post-client", fresh("post", how="basic"), "INVALID_CLIENT"),
    Case("client-secret-without-client-id", fresh(sender=None, client_secret="tds_whatever"), "INVALID_CLIENT"),
    Case("public-client-with-a-made-up-secret", fresh("public", how="post", secret="tds_made_up"), "INVALID_CLIENT"),
    Case("public-client-with-basic", fresh("public", how="basic", secret="tds_made_up"), "INVALID_CLIENT"),
    Case("client-unknown", fresh(sender=None, client_id="client_unknown"), "INVALID_CLIENT"),
    Case("client-disabled", disabled_client(public=False), "INVALID_CLIENT"),
    Case("public-client-disabled", disabled_client(public=True), "INVALID_CLIENT"),
    Case("client-no-longer-registered-for-refresh", client_lost_the_grant, "INVALID_CLIENT"),
    # -- the token
    Case("token-unknown", literal("tdr_" + secrets.token_urlsafe(32)), "INVALID_TOKEN"),
    Case("token-unknown-with-client-credentials", literal("tdr_unknown", "main"), "INVALID_TOKEN"),
    Case("token-very-long", literal("tdr_" + "x" * 5000), "INVALID_TOKEN"),
    Case("token-truncated", truncated, "INVALID_TOKEN"),
    Case("token-nul", literal("\x00"), "INVALID_TOKEN"),
    Case("access-token-instead", access_token_as_refresh_token, "INVALID_TOKEN"),
    Case("token-revoked", fresh("public", sender=None, spoil={"revoked_at": 1}), "INVALID_TOKEN"),
    Case("token-of-another-client", fresh(sender="other"), "INVALID_TOKEN"),
    Case("token-of-a-public-client-sent-by-a-confidential-one", fresh("public", sender="main"), "INVALID_TOKEN"),
    Case("token-of-a-disabled-account", disabled_account, "INVALID_TOKEN"),
    Case("token-expired-public", fresh("public", sender=None, spoil=EXPIRED), "TOKEN_EXPIRED"),
    Case("token-expired-confidential", fresh(spoil=EXPIRED), "TOKEN_EXPIRED"),
    # Only the client the token was issued to learns that it expired.
    Case("token-expired-of-another-client", fresh(sender="other", spoil=EXPIRED), "INVALID_TOKEN"),
    Case("token-expired-and-revoked", fresh("public", sender=None, spoil={**EXPIRED, "revoked_at": 1}),
         "INVALID_TOKEN"),
    # -- the body
    Case("content-type-form", with_refresh_token(lambda t: f"refresh_token={t}", FORM), "INVALID_REQUEST"),
    Case("content-type-text-plain", with_refresh_token(lambda t: f'{{"refresh_token": "{t}"}}', "text/plain"),
         "INVALID_REQUEST"),
    Case("content-type-missing", raw('{"refresh_token": "tdr_x"}', None), "INVALID_REQUEST"),
    Case("refresh-token-missing", raw("{}"), "INVALID_REQUEST"),
    Case("refresh-token-empty", raw('{"refresh_token": ""}'), "INVALID_REQUEST"),
    Case("refresh-token-number", raw('{"refresh_token": 5}'), "INVALID_REQUEST"),
    Case("refresh-token-null", raw('{"refresh_token": null}'), "INVALID_REQUEST"),
    Case("refresh-token-list", with_refresh_token(lambda t: f'{{"refresh_token": ["{t}"]}}'), "INVALID_REQUEST"),
    Case("refresh-token-object", raw('{"refresh_token": {"value": "tdr_x"}}'), "INVALID_REQUEST"),
    Case("refresh-token-lone-surrogate", raw('{"refresh_token": "\\ud800"}'), "INVALID_REQUEST"),
    Case("refresh-token-repeated",
         with_refresh_token(lambda t: f'{{"refresh_token": "{t}", "refresh_token": "{t}"}}'), "INVALID_REQUEST"),
    Case("unknown-field-grant-type",
         with_refresh_token(lambda t: f'{{"refresh_token": "{t}", "grant_type": "client_credentials"}}'),
         "INVALID_REQUEST"),
    Case("unknown-field-scope", with_refresh_token(lambda t: f'{{"refresh_token": "{t}", "scope": "read:users"}}'),
         "INVALID_REQUEST"),
    Case("json-malformed", with_refresh_token(lambda t: f'{{"refresh_token": "{t}",'), "INVALID_REQUEST"),
    Case("json-array", with_refresh_token(lambda t: f'["{t}"]'), "INVALID_REQUEST"),
    Case("json-string", with_refresh_token(lambda t: f'"{t}"'), "INVALID_REQUEST"),
    Case("json-null", raw("null"), "INVALID_REQUEST"),
    Case("json-empty-body", raw(""), "INVALID_REQUEST"),
    Case("json-deeply-nested", raw('{"refresh_token": ' + DEEP + "}"), "INVALID_REQUEST"),
    Case("json-not-utf8", raw(b'{"refresh_token": "\xff"}'), "INVALID_REQUEST"),
    Case("basic-and-secret-in-json", fresh(how="both"), "INVALID_REQUEST"),
    Case("insecure-transport", with_refresh_token(lambda t: f'{{"refresh_token": "{t}"}}',
                                                  base_url="http://api.example.com"), "INVALID_REQUEST"),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_refused_requests_get_the_envelope_and_store_nothing(world, registered, case):
    assert_envelope(case.send(world, registered), CODES[case.code], case.code)


OVERSIZED = {"refresh_token": "x" * MAX_BODY}

HTTP_CASES = {
    # Over AUTHSERVER_MAX_BODY_BYTES: 413 in the envelope, before anything else is looked at.
    "json-body-over-limit": (raw(None, None, json=OVERSIZED), 413),
    "chunked-body-over-limit": (raw(None, JSON, environ_overrides=CHUNKED,
                                    input_stream=io.BytesIO(b'{"refresh_token": "' + b"x" * MAX_BODY + b'"}')), 413),
    # A body of the wrong type is refused for its type, unread (as at the token endpoint).
    "form-body-over-limit": (raw(None, None, data=OVERSIZED), 400),
    "method-get": (raw(None, None, method="GET"), 405),
    "method-put": (raw('{"refresh_token": "tdr_x"}', method="PUT"), 405),
}


@pytest.mark.parametrize("name", list(HTTP_CASES))
def test_http_errors_get_the_envelope_and_store_nothing(world, registered, name):
    send, status = HTTP_CASES[name]
    response = send(world, registered)
    assert_envelope(response, status, "INVALID_REQUEST")
    if status == 405:
        assert "POST" in response.headers["Allow"].replace(" ", "").split(",")


def test_a_body_at_the_limit_is_read(world, registered):
    """Control for the 413 cases: the limit is the setting's, not something smaller."""
    token = world.user_tokens(registered.public)["refresh_token"]
    body = f'{{"refresh_token": "{token}"}}'
    body += " " * (MAX_BODY - len(body))
    response = world.api.post(REFRESH, data=body, content_type=JSON)
    assert response.status_code == 200, response.get_json()


# -- every /v1 error is the envelope ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/auth/nothing-here", "/v1/auth/refresh/extra"])
def test_unknown_v1_paths_get_the_envelope(world, path):
    with unchanged(world.database_url):
        assert_envelope(world.api.get(path), 404, "NOT_FOUND")
        assert_envelope(world.api.post(path, json={}), 404, "NOT_FOUND")


@pytest.mark.parametrize("failure", ["exception", "abort-500"])
def test_server_errors_under_v1_get_the_envelope(settings_overrides, failure):
    def crash():
        if failure == "abort-500":
            abort(500)
        raise RuntimeError("secret detail")

    # An app of its own, to add a failing route to; it stores nothing (the `app` fixture would
    # empty the tables the module's world is using).
    app = create_app(settings_overrides)
    app.add_url_rule("/v1/test-crash", "test_crash", crash)
    response = app.test_client().get("/v1/test-crash")
    message = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "secret detail" not in response.get_data(as_text=True)
    assert message == "The server could not complete the request."
