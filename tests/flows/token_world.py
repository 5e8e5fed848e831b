"""A shared world for the token-management tests (revocation, introspection, /v1/auth/refresh):
one app, one signed-in account and a set of clients per module (an Argon2 hash costs about 0.2 s),
ways to get real tokens, and forgeries of them.

Each test makes its own tokens, so none depends on another having run. Import the fixtures
(`world`, `registered`) into a test module to use them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from authserver.app import create_app
from authserver.credentials import digest
from authserver.extensions import SERVER_KEY, SETTINGS_KEY
from authserver.storage import clients, consents, users
from authserver.storage.db import session
from authserver.storage.models import Client, RefreshToken, User

from ..conftest import ISSUER, PASSWORD, REDIRECT_URI, _empty_tables, pkce_pair
from ..helpers import authorize_query, authorize_url, login, redirect_params

EMAIL = "ada@example.com"
ALL_SCOPES = "openid profile read:users write:data"
USER_SCOPE = "openid read:users"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_BODY = 64 * 1024  # AUTHSERVER_MAX_BODY_BYTES default


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
class Clients:
    main: Registered  # confidential, client_secret_basic, every grant
    other: Registered  # another confidential client (basic), every grant
    post: Registered  # confidential, client_secret_post
    public: Registered  # public: authenticates with "none"
    resource: Registered  # a resource service: confidential, client_credentials only


@dataclass
class World:
    app: Flask
    database_url: str
    user_id: int
    browser: FlaskClient  # signed in as EMAIL
    api: FlaskClient  # clients and resource services: no cookies

    def register(self, *, public=False, grant_types=("authorization_code", "refresh_token", "client_credentials"),
                 scope=ALL_SCOPES, name="Example App", **fields) -> Registered:
        """A client, with the user's consent to all its scopes already given."""
        if public:
            grant_types = tuple(g for g in grant_types if g != "client_credentials")
        with self.app.app_context():
            row, secret = clients.create_client(name=name, redirect_uris=[REDIRECT_URI], grant_types=list(grant_types),
                                                scope=scope, public=public, **fields)
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

    # -- real tokens ---------------------------------------------------------------------------

    def user_tokens(self, registered: Registered, scope: str = USER_SCOPE) -> dict:
        """The token response of an authorization-code exchange by `registered`, for the user."""
        verifier, challenge = pkce_pair()
        response = self.browser.get(authorize_url(authorize_query(registered.client_id, challenge, scope=scope)))
        assert response.status_code == 302, response.get_data(as_text=True)
        code = redirect_params(response)["code"]
        params = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                  "code_verifier": verifier}
        response = token_request(self.api, registered, params)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def machine_token(self, registered: Registered) -> str:
        response = token_request(self.api, registered, {"grant_type": "client_credentials"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    def rotate(self, registered: Registered, refresh_token: str) -> dict:
        response = token_request(self.api, registered, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def spoil_refresh_token(self, token: str, **values) -> None:
        self.execute(update(RefreshToken).where(RefreshToken.digest == digest(token)).values(**values))

    def disable_client(self, registered: Registered) -> None:
        self.execute(update(Client).where(Client.id == registered.row_id).values(is_active=False))

    def disable_user(self) -> None:
        self.execute(update(User).where(User.id == self.user_id).values(is_active=False))

    def enable_user(self) -> None:
        self.execute(update(User).where(User.id == self.user_id).values(is_active=True))

    # -- forging -------------------------------------------------------------------------------

    @property
    def signer(self):
        return self.app.extensions[SERVER_KEY].tokens.signer

    def sign(self, claims: dict, typ: str = "at+jwt") -> str:
        """Signed with the server's own active key: only what is signed may be wrong."""
        with self.app.app_context():
            return self.signer.sign(claims, typ=typ)


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
        user = users.create_user(EMAIL, "Ada Lovelace", PASSWORD, plan="pro")
    browser = app.test_client()
    assert login(browser, EMAIL).status_code == 302
    yield World(app, database_url, user.id, browser, app.test_client())
    _empty_tables(database_url)


@pytest.fixture(scope="module")
def registered(world) -> Clients:
    return Clients(
        main=world.register(),
        other=world.register(name="Other App"),
        post=world.register(name="Post App", auth_method="client_secret_post"),
        public=world.register(name="Public App", public=True),
        resource=world.register(name="Resource Service", grant_types=("client_credentials",)),
    )


# -- requests --------------------------------------------------------------------------------------


def client_auth(sender: Registered, how: str | None = None) -> tuple[dict, tuple | None]:
    """(body parameters, Basic credentials) for `sender` authenticating as registered, or `how`:
    basic, post, none (client_id only), both (Basic and client_secret in the body) or nothing."""
    how = how or {"client_secret_basic": "basic", "client_secret_post": "post", "none": "none"}[sender.auth_method]
    return {
        "basic": ({}, sender.basic),
        "post": ({"client_id": sender.client_id, "client_secret": sender.secret}, None),
        "none": ({"client_id": sender.client_id}, None),
        "both": ({"client_id": sender.client_id, "client_secret": sender.secret}, sender.basic),
        "nothing": ({}, None),
    }[how]


def post(api: FlaskClient, path: str, sender: Registered | None, params: dict, *, how: str | None = None,
         encoding: str = "form"):
    """POST `params` to `path` as a form or JSON, `sender` authenticating (None: not at all)."""
    extra, auth = client_auth(sender, how) if sender is not None else ({}, None)
    body = {**params, **extra}
    sent = {"data": body} if encoding == "form" else {"json": body}
    return api.post(path, auth=auth, **sent)


def token_request(api: FlaskClient, sender: Registered, params: dict):
    return post(api, "/oauth/token", sender, params)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# -- forgeries of a genuine access token -----------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _header(token: str) -> dict:
    return jwt.get_unverified_header(token)


def _flip(segment: str, at: int) -> str:
    """One base64url character changed, well inside the segment (the last one may be padding bits)."""
    return segment[:at] + ("A" if segment[at] != "A" else "B") + segment[at + 1:]


def _foreign_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


FOREIGN_KEY = _foreign_key()

Forge = Callable[[World, str], str]


def resigned(**changes) -> Forge:
    """The genuine claims with `changes` (None removes a claim), signed with our own key."""
    def forge(w: World, token: str) -> str:
        claims = {k: v for k, v in {**claims_of(token), **changes}.items() if v is not None}
        return w.sign(claims)
    return forge


def tampered_payload(w: World, token: str) -> str:
    header, _, signature = token.split(".")
    claims = claims_of(token)
    claims["scope"] = [*claims["scope"], "write:data"]
    return f"{header}.{_segment(claims)}.{signature}"


def tampered_signature(w: World, token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{_flip(signature, len(signature) // 2)}"


def alg_none(w: World, token: str) -> str:
    header = {**_header(token), "alg": "none"}
    return f"{_segment(header)}.{token.split('.')[1]}."


def hs256_with_public_key(w: World, token: str) -> str:
    """Algorithm confusion: HMAC keyed with our public key, which anyone can fetch."""
    header = {**_header(token), "alg": "HS256"}
    signing_input = f"{_segment(header)}.{token.split('.')[1]}"
    with w.app.app_context():
        public_pem = w.signer.public_key(_header(token)["kid"]).as_pem(private=False)
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def foreign_key(kid: str | None) -> Forge:
    """The genuine claims signed by a key we never published, named `kid` (None: our own kid)."""
    def forge(w: World, token: str) -> str:
        header = {"typ": "at+jwt", "kid": kid or _header(token)["kid"]}
        return jwt.encode(claims_of(token), FOREIGN_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            algorithm="RS256", headers=header)
    return forge


def id_token_like(w: World, token: str) -> str:
    """The genuine claims, signed by us, but typed as an ID token (RFC 9068 §4: not an access token)."""
    return w.sign(claims_of(token), typ="JWT")


NOW = int(time.time())

FORGERIES: dict[str, Forge] = {
    "tampered-payload": tampered_payload,
    "tampered-signature": tampered_signature,
    "truncated": lambda w, t: t[:-12],
    "signature-removed": lambda w, t: t.rsplit(".", 1)[0] + ".",
    "two-segments": lambda w, t: t.rsplit(".", 1)[0],
    "extra-character": lambda w, t: t + "A",
    "alg-none": alg_none,
    "alg-hs256-keyed-with-our-public-key": hs256_with_public_key,
    "signed-by-an-unknown-key-and-kid": foreign_key("unknown-kid"),
    "signed-by-an-unknown-key-claiming-our-kid": foreign_key(None),
    "id-token-like-typ-jwt": id_token_like,
    "wrong-issuer": resigned(iss="https://evil.example.com"),
    "wrong-audience": resigned(aud="https://other-api.example.com"),
    "expired": resigned(iat=NOW - 7200, exp=NOW - 3600),
    "without-jti": resigned(jti=None),
    "without-exp": resigned(exp=None),
    "not-a-jwt": lambda w, t: "not-a-token",
    "very-long": lambda w, t: t.replace(".", "A" * 10000 + ".", 1),
}


# -- what an RFC 6749 §5.2 error must look like ----------------------------------------------------

# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
DESCRIPTION_CHARS = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]+")


def assert_oauth_error(response, status: int, error: str) -> dict:
    body = response.get_json(silent=True)
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == JSON
    assert isinstance(body, dict) and body.get("error") == error, body
    assert set(body) <= {"error", "error_description", "error_uri"}, body
    assert DESCRIPTION_CHARS.fullmatch(body.get("error_description", "")), body
    assert response.headers["Cache-Control"] == "no-store"
    if error == "invalid_client":
        # RFC 6749 §5.2: 401 with a challenge whenever client authentication fails.
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    if status == 405:
        # RFC 9110 §15.5.6: a 405 names the methods that are allowed.
        assert "POST" in response.headers["Allow"].replace(" ", "").split(",")
    return body


# -- bodies both token-management endpoints refuse, before looking at any token ---------------------


@dataclass(frozen=True)
class BodyCase:
    name: str
    build: Callable[[Registered], dict]  # test-client arguments, the sender authenticating
    status: int = 400


def raw(body, content_type: str | None = FORM, *, authenticate: bool = True, **arguments) -> Callable[[Registered], dict]:
    def build(sender: Registered) -> dict:
        sent = {"data": body, **arguments} if body is not None else dict(arguments)
        if content_type:
            sent["content_type"] = content_type
        if authenticate:
            sent["auth"] = sender.basic
        return sent
    return build


CHUNKED = {"wsgi.input_terminated": True}  # what a server sets for a body without Content-Length
DEEP = "[" * 30000 + "]" * 30000

BODY_CASES = [
    BodyCase("token-missing", raw("token_type_hint=access_token")),
    BodyCase("token-empty", raw("token=")),
    BodyCase("token-empty-json", raw('{"token": ""}', JSON)),
    # RFC 6749 §3.2 (which RFC 7009 §2.1 and RFC 7662 §2.1 build on): no parameter twice.
    BodyCase("token-repeated", raw("token=a&token=b")),
    BodyCase("token-type-hint-repeated", raw("token=a&token_type_hint=access_token&token_type_hint=refresh_token")),
    BodyCase("content-type-text-plain", raw("token=a", "text/plain")),
    BodyCase("content-type-missing", raw("token=a", None)),
    BodyCase("json-malformed", raw('{"token": "a",', JSON)),
    BodyCase("json-array", raw('[["token", "a"]]', JSON)),
    BodyCase("json-string", raw('"token=a"', JSON)),
    BodyCase("json-empty-body", raw("", JSON)),
    BodyCase("json-token-number", raw('{"token": 5}', JSON)),
    BodyCase("json-token-null", raw('{"token": null}', JSON)),
    BodyCase("json-token-list", raw('{"token": ["a"]}', JSON)),
    BodyCase("json-token-object", raw('{"token": {"a": 1}}', JSON)),
    BodyCase("json-token-lone-surrogate", raw('{"token": "\\ud800"}', JSON)),
    BodyCase("json-repeats-token", raw('{"token": "a", "token": "b"}', JSON)),
    BodyCase("json-deeply-nested", raw('{"token": ' + DEEP + "}", JSON)),
    BodyCase("json-not-utf8", raw(b'{"token": "\xff"}', JSON)),
    # RFC 6749 §2.3: one client authentication method per request.
    BodyCase("basic-and-secret-in-body",
             lambda s: {"data": {"token": "a", "client_id": s.client_id, "client_secret": s.secret}, "auth": s.basic}),
    BodyCase("body-over-limit", raw(None, None, data={"token": "x" * MAX_BODY}), 413),
    BodyCase("json-body-over-limit", raw(None, None, json={"token": "x" * MAX_BODY}), 413),
    BodyCase("body-over-limit-without-client-authentication",
             raw(None, None, authenticate=False, data={"token": "x" * MAX_BODY}), 413),
    BodyCase("chunked-body-over-limit",
             raw(None, FORM, environ_overrides=CHUNKED, input_stream=io.BytesIO(b"token=" + b"x" * MAX_BODY)), 413),
    BodyCase("method-get", raw(None, None, method="GET", query_string="token=a"), 405),
    BodyCase("method-put", raw("token=a", method="PUT"), 405),
]


def send_raw(api: FlaskClient, path: str, sent: dict):
    sent = dict(sent)
    if "input_stream" in sent:
        sent["input_stream"].seek(0)  # the same case runs against more than one endpoint
    return api.open(path, method=sent.pop("method", "POST"), **sent)
