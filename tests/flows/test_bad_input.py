"""Bad input of any kind gets the right RFC 6749 error and a 4xx, never a 500, and stores nothing.

Every case snapshots every stored row before the bad request and compares after
(`stored_state.unchanged`). The one exception is a replayed authorization code, which by design
revokes what the code's first redemption issued; that test asserts exactly that change.

The cases share one app, account and set of clients per module (`world`, `registered`): an
Argon2 hash or verification costs about 0.2 s and there are some two hundred cases. Each case
makes its own codes and tokens, so none depends on another having run.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from authserver.app import create_app
from authserver.credentials import digest
from authserver.extensions import SETTINGS_KEY
from authserver.storage import clients, consents, users
from authserver.storage.db import session
from authserver.storage.models import AuthorizationCode, Client, RefreshToken, User
from authserver.web.auth_pages import LOGIN_FAILED

from ..conftest import ISSUER, PASSWORD, REDIRECT_URI, _empty_tables, pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, login, redirect_params, redirect_target, signed_in_as
from .stored_state import differences, snapshot, unchanged

EMAIL = "ada@example.com"
OTHER_REDIRECT_URI = "https://other.example.com/callback"
ALL_SCOPES = "openid profile read:users write:data"
MAX_BODY = 64 * 1024  # AUTHSERVER_MAX_BODY_BYTES default
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
DESCRIPTION_CHARS = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]+")
# Put into bad values; it must never come back in an error description.
MARKER = "INJECTED"
WELL_FORMED_VERIFIER = "a" * 43  # valid syntax (RFC 7636 §4.1), matching no challenge
_, CHALLENGE = pkce_pair()  # for authorization requests that must not succeed


# -- the world the cases run in ------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None
    row_id: int
    auth_method: str

    @property
    def basic(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


@dataclass(frozen=True)
class Code:
    code: str
    verifier: str | None


@dataclass
class World:
    app: Flask
    database_url: str
    user_id: int
    browser: FlaskClient  # signed in as EMAIL
    api: FlaskClient  # a client application: no cookies

    def register(self, *, consent=True, public=False, grant_types=("authorization_code", "refresh_token"),
                 redirect_uris=(REDIRECT_URI,), scope=ALL_SCOPES, name="Example App", **fields) -> Registered:
        """A client, with the user's consent to all its scopes already given (unless consent=False)."""
        with self.app.app_context():
            row, secret = clients.create_client(name=name, redirect_uris=list(redirect_uris),
                                                grant_types=list(grant_types), scope=scope, public=public, **fields)
            if consent:
                consents.remember(self.user_id, row.id, set(scope.split()))
            return Registered(row.client_id, secret, row.id, row.token_endpoint_auth_method)

    def execute(self, statement) -> None:
        """Change stored rows through the app's own storage session (to set up a case), and start
        this worker's client cache afresh, as a change made here would (storage/client_cache.py)."""
        with self.app.app_context():
            db = session()
            db.execute(statement)
            db.commit()
        clients.init_cache(self.app, self.app.extensions[SETTINGS_KEY].client_cache_seconds)

    def issue_code(self, registered: Registered, *, pkce=True) -> Code:
        verifier, challenge = pkce_pair() if pkce else (None, None)
        response = self.browser.get(authorize_url(authorize_query(registered.client_id, challenge)))
        assert response.status_code == 302, response.get_data(as_text=True)
        params = redirect_params(response)
        assert "code" in params, params
        return Code(params["code"], verifier)

    def refresh_token(self, registered: Registered) -> str:
        response = authenticated(registered, code_params(self.issue_code(registered))).send(self.api, "form")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["refresh_token"]


@dataclass(frozen=True)
class Clients:
    main: Registered  # confidential, client_secret_basic, every grant
    other: Registered  # another confidential client, with its own redirect URI
    post: Registered  # confidential, client_secret_post
    public: Registered  # public (auth method "none"), PKCE always
    relaxed: Registered  # confidential, PKCE relaxed (RFC 9700 §2.1.1), no client_credentials
    machine: Registered  # confidential, client_credentials only, yet with a redirect URI registered
    disabled: Registered  # was valid and consented to, then disabled


@pytest.fixture(scope="module")
def world(database_url, keys_dir, tmp_path_factory):
    app = create_app({
        "issuer": ISSUER,
        "database_url": database_url,
        "keys_dir": str(keys_dir),
        "instance_dir": str(tmp_path_factory.mktemp("instance")),
        "secret_key": "test-secret-key-" + "x" * 32,
    })
    assert app.config["MAX_CONTENT_LENGTH"] == MAX_BODY, "the 413 cases expect the default body limit"
    with app.app_context():
        user = users.create_user(EMAIL, "Ada Lovelace", PASSWORD)
    browser = app.test_client()
    assert login(browser, EMAIL).status_code == 302
    yield World(app, database_url, user.id, browser, app.test_client())
    _empty_tables(database_url)


@pytest.fixture(scope="module")
def registered(world) -> Clients:
    every_grant = ("authorization_code", "refresh_token", "client_credentials")
    disabled = world.register(name="Disabled App")
    world.execute(update(Client).where(Client.id == disabled.row_id).values(is_active=False))
    return Clients(
        main=world.register(grant_types=every_grant),
        other=world.register(name="Other App", redirect_uris=(OTHER_REDIRECT_URI,), grant_types=every_grant),
        post=world.register(auth_method="client_secret_post", grant_types=("authorization_code", "client_credentials")),
        public=world.register(public=True),
        relaxed=world.register(require_pkce=False),
        machine=world.register(grant_types=("client_credentials",)),
        disabled=disabled,
    )


# -- what every error must look like ------------------------------------------------------------


def assert_oauth_error(response, status: int, error: str) -> dict:
    """RFC 6749 §5.2: a JSON body with the exact `error`, a safe description, and no caching."""
    body = response.get_json(silent=True)
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == JSON
    assert isinstance(body, dict), response.get_data(as_text=True)
    assert body.get("error") == error, body
    assert set(body) <= {"error", "error_description", "error_uri"}, body
    description = body.get("error_description")
    assert isinstance(description, str) and DESCRIPTION_CHARS.fullmatch(description), body
    assert MARKER not in description, body
    assert response.headers["Cache-Control"] == "no-store"
    if error == "invalid_client":
        # RFC 6749 §5.2: 401 with a challenge whenever client authentication fails.
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    return body


# -- token endpoint: how a case builds its request ---------------------------------------------


@dataclass(frozen=True)
class Req:
    """A token request: `params` encoded as a form or as JSON, or `raw` test-client arguments."""

    params: dict | None = None
    auth: tuple | None = None
    headers: dict | None = None
    raw: dict | None = None
    method: str = "POST"

    def send(self, api, encoding: str):
        if encoding == "raw":
            return api.open("/oauth/token", method=self.method, **(self.raw or {}))
        body = {"data": self.params} if encoding == "form" else {"json": self.params}
        return api.open("/oauth/token", method=self.method, auth=self.auth, headers=self.headers, **body)


Builder = Callable[[World, Clients], Req]


def code_params(issued: Code, **changes) -> dict:
    """A valid authorization_code request for `issued`, with `changes` (None removes a parameter)."""
    params = {"grant_type": "authorization_code", "code": issued.code, "redirect_uri": REDIRECT_URI}
    if issued.verifier:
        params["code_verifier"] = issued.verifier
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def authenticated(sender: Registered, params: dict, how: str | None = None) -> Req:
    """`params` sent by `sender`, authenticating as registered, or `how`: basic, post, none (client_id
    only), both (basic and client_secret in the body) or nothing."""
    how = how or {"client_secret_basic": "basic", "client_secret_post": "post", "none": "none"}[sender.auth_method]
    identify = {"client_id": sender.client_id}
    secret = {**identify, "client_secret": sender.secret}
    return {
        "basic": Req(params, auth=sender.basic),
        "post": Req({**params, **secret}),
        "none": Req({**params, **identify}),
        "both": Req({**params, **secret}, auth=sender.basic),
        "nothing": Req(params),
    }[how]


def redeem(issuer="main", *, sender=None, how=None, pkce=True, **changes) -> Builder:
    """A fresh code of client `issuer`, redeemed by `sender` (default the issuer) with `changes`."""
    def build(w: World, c: Clients) -> Req:
        code = w.issue_code(getattr(c, issuer), pkce=pkce)
        return authenticated(getattr(c, sender or issuer), code_params(code, **changes), how)
    return build


def redeem_unknown(sender="main", code="not-a-code") -> Builder:
    return lambda w, c: authenticated(getattr(c, sender), code_params(Code(code, WELL_FORMED_VERIFIER)))


def refresh(owner="main", *, sender=None, token=None, **changes) -> Builder:
    """A fresh refresh token of client `owner` (or the literal `token`), sent by `sender`."""
    def build(w: World, c: Clients) -> Req:
        token_sent = token or w.refresh_token(getattr(c, owner))
        params = {"grant_type": "refresh_token", "refresh_token": token_sent, **changes}
        return authenticated(getattr(c, sender or owner), params)
    return build


def expired_code(w: World, c: Clients) -> Req:
    code = w.issue_code(c.main)
    w.execute(update(AuthorizationCode).where(AuthorizationCode.digest == digest(code.code))
              .values(expires_at=int(time.time()) - 1))
    return authenticated(c.main, code_params(code))


def spoiled_refresh_token(**values) -> Builder:
    """A fresh refresh token of the main client, whose stored row then gets `values`."""
    def build(w: World, c: Clients) -> Req:
        token = w.refresh_token(c.main)
        w.execute(update(RefreshToken).where(RefreshToken.digest == digest(token)).values(**values))
        return authenticated(c.main, {"grant_type": "refresh_token", "refresh_token": token})
    return build


def disabled_client(w: World, c: Clients) -> Req:
    disabled = w.register(name="Disabled Later")
    code = w.issue_code(disabled)  # issued while the client was active
    w.execute(update(Client).where(Client.id == disabled.row_id).values(is_active=False))
    return authenticated(disabled, code_params(code))


def credentials(sender="machine", *, how=None, auth=None, headers=None, **params) -> Builder:
    """A client_credentials request by `sender`; `auth` or `headers` replace its authentication."""
    def build(w: World, c: Clients) -> Req:
        body = {k: v for k, v in {"grant_type": "client_credentials", **params}.items() if v is not None}
        if auth or headers:
            return Req(body, auth=auth(c) if auth else None, headers=headers(c) if headers else None)
        return authenticated(getattr(c, sender), body, how)
    return build


def raw(body, content_type: str | None = FORM, **arguments) -> Builder:
    """Test-client arguments as they are, authenticated as the machine client."""
    def build(w: World, c: Clients) -> Req:
        sent = {"data": body, **arguments} if body is not None else dict(arguments)
        if content_type:
            sent["content_type"] = content_type
        sent.setdefault("auth", c.machine.basic)
        return Req(raw=sent, method=sent.pop("method", "POST"))
    return build


def basic_header(raw_credentials: bytes) -> Callable[[Clients], dict]:
    return lambda c: {"Authorization": "Basic " + base64.b64encode(raw_credentials).decode()}


@dataclass(frozen=True)
class TokenCase:
    name: str
    build: Builder
    error: str
    status: int = 400
    encodings: tuple[str, ...] = ("form", "json")


def body_case(name: str, build: Builder, error="invalid_request", status=400) -> TokenCase:
    """A case about the body itself: sent as built, not as form and JSON."""
    return TokenCase(name, build, error, status, encodings=("raw",))


CLIENT_CREDENTIALS = "grant_type=client_credentials"
OVERSIZED = {"grant_type": "client_credentials", "pad": "x" * MAX_BODY}
CHUNKED = {"wsgi.input_terminated": True}  # what a server sets for a body without Content-Length
DEEP = "[" * 30000 + "]" * 30000

TOKEN_CASES = [
    # -- authorization_code: bound to client, redirect URI and PKCE challenge (RFC 6749 §4.1.3)
    TokenCase("code-of-another-client", redeem(sender="other"), "invalid_grant"),
    TokenCase("code-of-a-confidential-client-sent-by-a-public-one", redeem(sender="public"), "invalid_grant"),
    TokenCase("redirect-uri-trailing-slash", redeem(redirect_uri=REDIRECT_URI + "/"), "invalid_grant"),
    TokenCase("redirect-uri-one-letter-case", redeem(redirect_uri=REDIRECT_URI.replace("callback", "Callback")),
              "invalid_grant"),
    TokenCase("redirect-uri-one-letter-short", redeem(redirect_uri=REDIRECT_URI[:-1]), "invalid_grant"),
    TokenCase("redirect-uri-extra-query", redeem(redirect_uri=REDIRECT_URI + "?x=1"), "invalid_grant"),
    # The code is bound to the redirect URI it was issued for, and a request without one does not
    # match it (§4.1.3; §5.2 invalid_grant "does not match the redirection URI").
    TokenCase("redirect-uri-missing", redeem(redirect_uri=None), "invalid_grant"),
    TokenCase("verifier-42-chars", redeem(code_verifier="a" * 42), "invalid_request"),
    TokenCase("verifier-129-chars", redeem(code_verifier="a" * 129), "invalid_request"),
    TokenCase("verifier-with-forbidden-characters", redeem(code_verifier="+/" * 22), "invalid_request"),
    TokenCase("verifier-wrong", redeem(code_verifier=WELL_FORMED_VERIFIER), "invalid_grant"),  # RFC 7636 §4.6
    TokenCase("verifier-missing", redeem(code_verifier=None), "invalid_request"),
    TokenCase("verifier-missing-public-client", redeem("public", code_verifier=None), "invalid_request"),
    TokenCase("verifier-wrong-public-client", redeem("public", code_verifier=WELL_FORMED_VERIFIER), "invalid_grant"),
    # RFC 9700 §4.8: a verifier for a code issued without a challenge is refused.
    TokenCase("verifier-for-a-code-without-challenge",
              redeem("relaxed", pkce=False, code_verifier=WELL_FORMED_VERIFIER), "invalid_request"),
    TokenCase("code-unknown", redeem_unknown(), "invalid_grant"),
    TokenCase("code-very-long", redeem_unknown(code="c" * 5000), "invalid_grant"),
    TokenCase("code-expired", expired_code, "invalid_grant"),
    TokenCase("code-missing", redeem(code=None), "invalid_request"),
    TokenCase("code-for-a-client-without-the-grant", redeem_unknown("machine"), "unauthorized_client"),
    # -- client authentication (RFC 6749 §2.3, §3.2.1): always 401 with a challenge
    TokenCase("client-secret-wrong",
              lambda w, c: Req(code_params(w.issue_code(c.main)), auth=(c.main.client_id, c.other.secret)),
              "invalid_client", 401),
    TokenCase("client-secret-empty", lambda w, c: Req(code_params(w.issue_code(c.main)), auth=(c.main.client_id, "")),
              "invalid_client", 401),
    TokenCase("client-unknown", credentials(auth=lambda c: ("client_unknown", "secret")), "invalid_client", 401),
    TokenCase("client-id-with-nul", credentials(auth=lambda c: (c.machine.client_id + "\x00", c.machine.secret)),
              "invalid_client", 401),
    TokenCase("client-id-very-long", credentials(auth=lambda c: ("c" * 5000, "secret")), "invalid_client", 401),
    TokenCase("client-disabled", disabled_client, "invalid_client", 401),
    TokenCase("client-authentication-missing", redeem(how="nothing"), "invalid_client", 401),
    TokenCase("confidential-client-posing-as-public", redeem(how="none"), "invalid_client", 401),
    TokenCase("secret-in-body-for-a-basic-client", redeem(how="post"), "invalid_client", 401),
    TokenCase("basic-for-a-client-secret-post-client", redeem("post", how="basic"), "invalid_client", 401),
    TokenCase("public-client-sends-a-secret", redeem("public", client_secret="made-up"), "invalid_client", 401),
    TokenCase("public-client-id-with-nul",
              lambda w, c: Req({**code_params(w.issue_code(c.public)), "client_id": c.public.client_id + "\x00"}),
              "invalid_client", 401),
    # RFC 6749 §2.3 and §5.2 invalid_request: "utilizes more than one mechanism for authenticating".
    TokenCase("basic-and-secret-in-body", redeem(how="both"), "invalid_request"),
    TokenCase("basic-not-base64", credentials(headers=lambda c: {"Authorization": "Basic %%%not-base64"}),
              "invalid_client", 401),
    TokenCase("basic-not-utf8", credentials(headers=basic_header(b"\xff\xfe:\xff")), "invalid_client", 401),
    TokenCase("basic-without-colon", credentials(headers=lambda c: basic_header(c.machine.client_id.encode())(c)),
              "invalid_client", 401),
    # -- refresh_token (RFC 6749 §6)
    TokenCase("refresh-token-of-another-client", refresh(sender="other"), "invalid_grant"),
    TokenCase("refresh-token-of-a-confidential-client-sent-by-a-public-one", refresh(sender="public"), "invalid_grant"),
    TokenCase("refresh-token-unknown", refresh(token="tdr_unknown"), "invalid_grant"),
    TokenCase("refresh-token-very-long", refresh(token="t" * 5000), "invalid_grant"),
    TokenCase("refresh-token-expired", spoiled_refresh_token(expires_at=int(time.time()) - 1), "invalid_grant"),
    TokenCase("refresh-token-revoked", spoiled_refresh_token(revoked_at=int(time.time())), "invalid_grant"),
    TokenCase("refresh-token-missing", lambda w, c: authenticated(c.main, {"grant_type": "refresh_token"}),
              "invalid_request"),
    TokenCase("refresh-scope-wider-than-granted", refresh(scope="openid read:users write:data"), "invalid_scope"),
    # -- client_credentials (RFC 6749 §4.4)
    # Confidential clients only, and §4.4.2: the client MUST authenticate. A public client has no
    # credentials, so its authentication fails: invalid_client (§5.2 "no client authentication
    # included"). unauthorized_client is for an *authenticated* client that may not use the grant.
    TokenCase("client-credentials-public-client", credentials("public"), "invalid_client", 401),
    TokenCase("client-credentials-public-client-registered-for-it",
              lambda w, c: authenticated(w.register(public=True, grant_types=("client_credentials",)),
                                         {"grant_type": "client_credentials"}), "invalid_client", 401),
    TokenCase("client-credentials-not-registered-for-the-grant", credentials("relaxed"), "unauthorized_client"),
    TokenCase("client-credentials-unknown-scope", credentials(scope="read:users admin"), "invalid_scope"),
    TokenCase("client-credentials-scope-not-registered", credentials(scope="keys:manage"), "invalid_scope"),
    # -- grant_type
    TokenCase("grant-type-unsupported", credentials("main", grant_type="password", username=EMAIL, password=PASSWORD),
              "unsupported_grant_type"),
    TokenCase("grant-type-implicit", credentials("main", grant_type="implicit"), "unsupported_grant_type"),
    TokenCase("grant-type-with-forbidden-characters", credentials("main", grant_type=f'{MARKER}"\\é'),
              "unsupported_grant_type"),
    # §5.2 invalid_request: "missing a required parameter".
    TokenCase("grant-type-missing", credentials("main", grant_type=None, scope="read:users"), "invalid_request"),
    TokenCase("grant-type-empty", credentials("main", grant_type=""), "invalid_request"),
    # -- the body itself
    body_case("content-type-text-plain", raw(CLIENT_CREDENTIALS, "text/plain")),
    body_case("content-type-missing", raw(CLIENT_CREDENTIALS, None)),
    body_case("content-type-multipart",
              lambda w, c: raw({"grant_type": "client_credentials", "f": (io.BytesIO(b"x"), "f.txt")}, None)(w, c)),
    # RFC 6749 §3.2: parameters MUST NOT be included more than once.
    body_case("form-repeats-grant-type", raw(CLIENT_CREDENTIALS + "&" + CLIENT_CREDENTIALS)),
    body_case("form-repeats-scope", raw(CLIENT_CREDENTIALS + "&scope=read:users&scope=openid")),
    body_case("form-repeats-an-unknown-parameter", raw(CLIENT_CREDENTIALS + f"&{MARKER}=1&{MARKER}=2")),
    body_case("form-repeats-client-secret",
              lambda w, c: raw(urlencode([("grant_type", "client_credentials"), ("client_id", c.post.client_id),
                                          ("client_secret", c.post.secret), ("client_secret", c.post.secret)]),
                               auth=None)(w, c)),
    body_case("form-repeats-code",
              lambda w, c: raw(urlencode([*code_params(code := w.issue_code(c.main)).items(), ("code", code.code)]),
                               auth=c.main.basic)(w, c)),
    body_case("json-repeats-grant-type", raw('{"grant_type": "client_credentials", "grant_type": "password"}', JSON)),
    body_case("json-malformed", raw('{"grant_type": "client_credentials",', JSON)),
    body_case("json-array", raw('[["grant_type", "client_credentials"]]', JSON)),
    body_case("json-string", raw('"grant_type=client_credentials"', JSON)),
    body_case("json-null", raw("null", JSON)),
    body_case("json-empty-body", raw("", JSON)),
    body_case("json-grant-type-number", raw('{"grant_type": 5}', JSON)),
    body_case("json-grant-type-null", raw('{"grant_type": null}', JSON)),
    body_case("json-grant-type-list", raw('{"grant_type": ["client_credentials"]}', JSON)),
    body_case("json-scope-object", raw('{"grant_type": "client_credentials", "scope": {"read:users": true}}', JSON)),
    body_case("json-code-number",
              lambda w, c: Req(raw={"json": {**code_params(w.issue_code(c.main)), "code": 12345},
                                    "auth": c.main.basic})),
    body_case("json-deeply-nested", raw(DEEP, JSON)),
    body_case("json-deeply-nested-in-a-value", raw('{"grant_type": ' + DEEP + "}", JSON)),
    body_case("json-not-utf8", raw(b'{"grant_type": "\xff"}', JSON)),
    # Over AUTHSERVER_MAX_BODY_BYTES: 413, still an OAuth error body, before any authentication.
    body_case("form-body-over-limit", raw(OVERSIZED, None), status=413),
    body_case("json-body-over-limit", raw(None, None, json=OVERSIZED), status=413),
    body_case("body-over-limit-without-client-authentication", raw(OVERSIZED, None, auth=None), status=413),
    # A chunked body has no Content-Length: the limit must hold while reading.
    body_case("chunked-form-body-over-limit",
              lambda w, c: raw(None, FORM, environ_overrides=CHUNKED,
                               input_stream=io.BytesIO(b"grant_type=client_credentials&pad=" + b"x" * MAX_BODY))(w, c),
              status=413),
    body_case("chunked-json-body-over-limit",
              lambda w, c: raw(None, JSON, environ_overrides=CHUNKED,
                               input_stream=io.BytesIO(b'{"grant_type": "' + b"x" * MAX_BODY + b'"}'))(w, c),
              status=413),
    body_case("method-get", raw(None, None, method="GET", query_string=CLIENT_CREDENTIALS), status=405),
    body_case("method-put", raw(CLIENT_CREDENTIALS, method="PUT"), status=405),
]


@pytest.mark.parametrize(
    ("case", "encoding"),
    [pytest.param(case, encoding, id=f"{case.name}-{encoding}") for case in TOKEN_CASES for encoding in case.encodings],
)
def test_token_endpoint_refuses_bad_input_and_stores_nothing(world, registered, case, encoding):
    request = case.build(world, registered)
    with unchanged(world.database_url):
        response = request.send(world.api, encoding)
    assert_oauth_error(response, case.status, case.error)
    if case.status == 405:
        # RFC 9110 §15.5.6: a 405 names the methods that are allowed.
        assert "POST" in response.headers.get("Allow", "").replace(" ", "").split(",")


VALID_TOKEN_REQUESTS = {
    "authorization-code": redeem(),
    "authorization-code-public": redeem("public"),
    "authorization-code-client-secret-post": redeem("post"),
    "authorization-code-without-pkce": redeem("relaxed", pkce=False),
    "refresh-token": refresh(),
    "client-credentials": credentials(scope=ALL_SCOPES),
}


@pytest.mark.parametrize("encoding", ["form", "json"])
@pytest.mark.parametrize("name", list(VALID_TOKEN_REQUESTS))
def test_the_requests_the_cases_spoil_succeed(world, registered, name, encoding):
    """Control: each bad case is one of these with one thing wrong, so it fails for that thing."""
    response = VALID_TOKEN_REQUESTS[name](world, registered).send(world.api, encoding)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["access_token"]


def test_a_body_at_the_limit_is_read(world, registered):
    """Control for the 413 cases: the limit is the setting's, not something smaller."""
    body = CLIENT_CREDENTIALS + "&pad="
    body += "x" * (MAX_BODY - len(body))
    response = world.api.post("/oauth/token", data=body, content_type=FORM, auth=registered.machine.basic)
    assert response.status_code == 200, response.get_json()


# -- authorization endpoint -----------------------------------------------------------------------


Pairs = list[tuple[str, str]]


def authz(client="main", *, challenge=CHALLENGE, drop=(), repeat=None, **changes) -> Callable[[Clients], Pairs]:
    """An authorization request of `client` (a `Clients` field, or else a literal client_id) with
    `changes`, parameters in `drop` left out, and those in `repeat` sent twice (the second time
    with the value given, or the same value when that is None)."""
    def build(c: Clients) -> Pairs:
        client_id = getattr(c, client).client_id if client in Clients.__dataclass_fields__ else client
        pairs = [(k, v) for k, v in authorize_query(client_id, challenge, **changes).items() if k not in drop]
        for name, value in (repeat or {}).items():
            pairs.append((name, dict(pairs)[name] if value is None else value))
        return pairs
    return build


@dataclass(frozen=True)
class AuthorizeCase:
    name: str
    build: Callable[[Clients], Pairs]
    error: str | None  # PAGE: an error page here, no redirect
    anonymous: bool = False


PAGE = None
AUTHORIZE_CASES = [
    # RFC 6749 §4.1.2.1: without a valid client and a registered redirect URI, never redirect.
    AuthorizeCase("client-unknown", authz("client_unknown"), PAGE),
    AuthorizeCase("client-unknown-anonymous", authz("client_unknown"), PAGE, anonymous=True),
    AuthorizeCase("client-id-missing", authz(drop=("client_id",)), PAGE),
    AuthorizeCase("client-id-empty", authz(""), PAGE),
    AuthorizeCase("client-id-with-nul", lambda c: authz(c.main.client_id + "\x00")(c), PAGE),
    AuthorizeCase("client-id-very-long", authz("c" * 5000), PAGE),
    AuthorizeCase("client-disabled", authz("disabled"), PAGE),
    AuthorizeCase("redirect-uri-not-registered", authz(redirect_uri="https://evil.example.com/callback"), PAGE),
    AuthorizeCase("redirect-uri-of-another-client", authz(redirect_uri=OTHER_REDIRECT_URI), PAGE),
    AuthorizeCase("redirect-uri-trailing-slash", authz(redirect_uri=REDIRECT_URI + "/"), PAGE),
    AuthorizeCase("redirect-uri-one-letter-case", authz(redirect_uri=REDIRECT_URI.replace("callback", "Callback")),
                  PAGE),
    AuthorizeCase("redirect-uri-host-case", authz(redirect_uri=REDIRECT_URI.replace("app.", "App.")), PAGE),
    AuthorizeCase("redirect-uri-one-letter-short", authz(redirect_uri=REDIRECT_URI[:-1]), PAGE),
    AuthorizeCase("redirect-uri-extra-query", authz(redirect_uri=REDIRECT_URI + "?next=/admin"), PAGE),
    AuthorizeCase("redirect-uri-fragment", authz(redirect_uri=REDIRECT_URI + "#x"), PAGE),
    AuthorizeCase("redirect-uri-http", authz(redirect_uri=REDIRECT_URI.replace("https:", "http:")), PAGE),
    AuthorizeCase("redirect-uri-not-registered-anonymous", authz(redirect_uri=REDIRECT_URI + "/"), PAGE,
                  anonymous=True),
    AuthorizeCase("redirect-uri-missing", authz(drop=("redirect_uri",)), PAGE),
    AuthorizeCase("redirect-uri-unregistered-and-response-type-token",
                  authz(redirect_uri=REDIRECT_URI + "/", response_type="token"), PAGE),
    AuthorizeCase("redirect-uri-unregistered-and-pkce-missing", authz(challenge=None, redirect_uri=REDIRECT_URI + "/"),
                  PAGE),
    # RFC 6749 §3.1: a repeated parameter makes the request ambiguous; nothing in it is trusted.
    AuthorizeCase("repeats-client-id", authz(repeat={"client_id": None}), PAGE),
    AuthorizeCase("repeats-client-id-differently", lambda c: authz(repeat={"client_id": c.other.client_id})(c), PAGE),
    AuthorizeCase("repeats-redirect-uri", authz(repeat={"redirect_uri": None}), PAGE),
    AuthorizeCase("repeats-response-type", authz(repeat={"response_type": None}), PAGE),
    AuthorizeCase("repeats-scope", authz(repeat={"scope": "write:data"}), PAGE),
    AuthorizeCase("repeats-state", authz(repeat={"state": "other"}), PAGE),
    AuthorizeCase("repeats-code-challenge", authz(repeat={"code_challenge": None}), PAGE),
    AuthorizeCase("repeats-code-challenge-method", authz(repeat={"code_challenge_method": "plain"}), PAGE),
    # A valid client and registered redirect URI: the error goes back to the client (§4.1.2.1).
    AuthorizeCase("code-challenge-missing", authz(challenge=None), "invalid_request"),
    AuthorizeCase("code-challenge-missing-anonymous", authz(challenge=None), "invalid_request", anonymous=True),
    AuthorizeCase("code-challenge-missing-public-client", authz("public", challenge=None), "invalid_request"),
    AuthorizeCase("code-challenge-method-plain", authz(method="plain"), "invalid_request"),
    AuthorizeCase("code-challenge-method-plain-relaxed-client", authz("relaxed", method="plain"), "invalid_request"),
    # RFC 7636 §4.3: an omitted method means plain.
    AuthorizeCase("code-challenge-method-missing", authz(drop=("code_challenge_method",)), "invalid_request"),
    AuthorizeCase("code-challenge-method-unknown", authz(method="S512"), "invalid_request"),
    AuthorizeCase("code-challenge-method-without-challenge",
                  authz("relaxed", challenge=None, code_challenge_method="S256"), "invalid_request"),
    AuthorizeCase("code-challenge-too-short", authz(challenge=CHALLENGE[:42]), "invalid_request"),
    AuthorizeCase("code-challenge-too-long", authz(challenge=CHALLENGE * 3), "invalid_request"),
    AuthorizeCase("code-challenge-forbidden-characters", authz(challenge="+/" * 22), "invalid_request"),
    AuthorizeCase("scope-unknown", authz(scope="openid admin"), "invalid_scope"),
    AuthorizeCase("scope-not-registered-for-client", authz(scope="keys:manage"), "invalid_scope"),
    AuthorizeCase("scope-unknown-anonymous", authz(scope=MARKER), "invalid_scope", anonymous=True),
    AuthorizeCase("response-type-token", authz(response_type="token"), "unsupported_response_type"),
    AuthorizeCase("response-type-code-id-token", authz(response_type="code id_token"), "unsupported_response_type"),
    AuthorizeCase("response-type-with-forbidden-characters", authz(response_type=f'{MARKER}"é'),
                  "unsupported_response_type"),
    # §4.1.2.1 invalid_request: "missing a required parameter".
    AuthorizeCase("response-type-missing", authz(drop=("response_type",)), "invalid_request"),
    AuthorizeCase("response-type-code-for-a-client-without-the-grant", authz("machine"), "unauthorized_client"),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in AUTHORIZE_CASES])
def test_authorize_refuses_bad_requests_and_stores_nothing(world, registered, case):
    pairs = case.build(registered)
    browser = world.app.test_client() if case.anonymous else world.browser
    with unchanged(world.database_url):
        response = browser.get("/oauth/authorize?" + urlencode(pairs))

    if case.error is PAGE:
        html = response.get_data(as_text=True)
        assert response.status_code == 400, html
        assert "Location" not in response.headers
        assert response.mimetype == "text/html"
        assert 'role="alert"' in html
        for name, value in pairs:
            if name == "redirect_uri":
                assert value not in html  # not even as a link
        return

    assert response.status_code == 302, response.get_data(as_text=True)
    assert redirect_target(response) == REDIRECT_URI
    params = redirect_params(response)
    assert params["error"] == case.error, params
    assert params["state"] == "xyz"
    assert params["iss"] == ISSUER  # RFC 9207
    assert "code" not in params
    assert DESCRIPTION_CHARS.fullmatch(params["error_description"]) and MARKER not in params["error_description"]


@pytest.mark.parametrize("client", ["main", "public", "relaxed"])
def test_authorize_control(world, registered, client):
    """Control for the table above: the unspoiled request issues a code, and so stores one."""
    before = snapshot(world.database_url)
    response = world.browser.get("/oauth/authorize?" + urlencode(authz(client)(registered)))
    assert response.status_code == 302
    assert "code" in redirect_params(response)
    assert list(differences(before, snapshot(world.database_url))) == ["authorization_codes"]


# -- browser forms --------------------------------------------------------------------------------


def _alert(html: str) -> str:
    match = re.search(r'role="alert">([^<]*)<', html)
    assert match, html
    return match.group(1)


def _login_page_shape(html: str, email: str) -> str:
    """The page with what legitimately differs (CSRF token, the email typed) blanked out."""
    html = re.sub(r'(name="csrf_token"[^>]*value=")[^"]+', r"\1", html)
    return html.replace(email, "EMAIL")


def test_login_failures_look_the_same_whatever_was_wrong(world):
    disabled_email = "disabled@example.com"
    with world.app.app_context():
        disabled_user = users.create_user(disabled_email, "Disabled", PASSWORD)
    world.execute(update(User).where(User.id == disabled_user.id).values(is_active=False))

    attempts = {
        "wrong password": (EMAIL, "not the password"),
        "unknown email": ("nobody@example.com", PASSWORD),
        "disabled account": (disabled_email, PASSWORD),
        "email with NUL": (EMAIL + "\x00", PASSWORD),
    }
    responses = {}
    for reason, (email, password) in attempts.items():
        browser = world.app.test_client()
        with unchanged(world.database_url):
            responses[reason] = (login(browser, email, password=password), email)
        assert signed_in_as(browser) is None, reason

    statuses = {reason: response.status_code for reason, (response, _) in responses.items()}
    assert set(statuses.values()) == {401}, statuses
    messages = {reason: _alert(response.get_data(as_text=True)) for reason, (response, _) in responses.items()}
    assert set(messages.values()) == {LOGIN_FAILED}, messages
    shapes = {_login_page_shape(response.get_data(as_text=True), email) for response, email in responses.values()}
    assert len(shapes) == 1, "the failure pages differ beyond the email typed"


def test_login_without_csrf_token_is_refused(world):
    browser = world.app.test_client()
    browser.get("/login")
    with unchanged(world.database_url):
        response = browser.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert signed_in_as(browser) is None


def _consent_page(world) -> tuple[str, str]:
    """A consent screen for a client the user has not consented to yet: its URL and CSRF token."""
    url = authorize_url(authorize_query(world.register(consent=False).client_id, CHALLENGE))
    page = world.browser.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return url, csrf_token(page.get_data(as_text=True))


@pytest.mark.parametrize("csrf", ["missing", "wrong"])
@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_consent_without_csrf_token_is_refused_and_stores_nothing(world, csrf, decision):
    url, token = _consent_page(world)
    data = {"decision": decision}
    if csrf == "wrong":
        data["csrf_token"] = token[:-4] + "AAAA"
    with unchanged(world.database_url):
        response = world.browser.post(url, data=data)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_consent_without_a_decision_is_refused_and_stores_nothing(world):
    url, token = _consent_page(world)
    with unchanged(world.database_url):
        response = world.browser.post(url, data={"csrf_token": token, "decision": "maybe"})
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_consent_post_with_a_tampered_request_is_refused_and_stores_nothing(world):
    """The consent form posts back to its own URL; a redirect URI changed there is still refused."""
    url, token = _consent_page(world)
    tampered = url.replace(urlencode({"redirect_uri": REDIRECT_URI}), urlencode({"redirect_uri": OTHER_REDIRECT_URI}))
    assert tampered != url
    with unchanged(world.database_url):
        response = world.browser.post(tampered, data={"csrf_token": token, "decision": "allow"})
    assert response.status_code == 400
    assert "Location" not in response.headers


# -- replay: the one bad request that changes state, by design ---------------------------------


def test_replayed_code_is_refused_and_revokes_what_it_issued(world, registered):
    main = registered.main
    code = world.issue_code(main)
    first = world.api.post("/oauth/token", data=code_params(code), auth=main.basic)
    assert first.status_code == 200, first.get_json()
    tokens = first.get_json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})

    before = snapshot(world.database_url)
    replay = world.api.post("/oauth/token", data=code_params(code), auth=main.basic)
    assert_oauth_error(replay, 400, "invalid_grant")

    # RFC 6749 §4.1.2 (and RFC 9700 §4.14): the tokens of the first redemption are revoked,
    # and nothing else changes.
    changed = differences(before, snapshot(world.database_url))
    assert set(changed) == {"refresh_tokens", "revoked_access_tokens"}, changed
    assert changed["revoked_access_tokens"] == {"removed": [], "added": [(claims["jti"], claims["exp"])]}
    columns = [column.name for column in RefreshToken.__table__.columns]
    (old_row,), (new_row,) = changed["refresh_tokens"]["removed"], changed["refresh_tokens"]["added"]
    old, new = dict(zip(columns, old_row)), dict(zip(columns, new_row))
    assert old["digest"] == new["digest"] == digest(tokens["refresh_token"])
    assert old["revoked_at"] is None and new["revoked_at"] is not None
    assert {k: v for k, v in old.items() if k != "revoked_at"} == {k: v for k, v in new.items() if k != "revoked_at"}

    with unchanged(world.database_url):
        refreshed = world.api.post("/oauth/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]}, auth=main.basic)
    assert_oauth_error(refreshed, 400, "invalid_grant")

    with unchanged(world.database_url):  # a third try finds everything already revoked
        again = world.api.post("/oauth/token", data=code_params(code), auth=main.basic)
    assert_oauth_error(again, 400, "invalid_grant")


# -- the snapshot itself can fail ---------------------------------------------------------------


def test_the_snapshot_sees_a_change(world):
    with pytest.raises(AssertionError, match="stored state changed"):
        with unchanged(world.database_url):
            world.register(name="Seen")
