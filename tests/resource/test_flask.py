"""The Flask integration, as a resource service uses it, with real tokens: which Authorization
headers pass, and the exact status, code, body and challenge of every refusal."""

from __future__ import annotations

import time

import pytest
from flask import Flask, g

from authserver.resource import APIKeyVerifier, JWKSCache, TokenVerifier
from authserver.resource.api_key_format import new_api_key
from authserver.resource.flask import ResourceAuth, current_principal, require_auth

from ..e2e.processes import HOST, free_port
from .conftest import make_verifier
from .live import AUDIENCE

REALM = f'realm="{AUDIENCE}"'
BARE = f"Bearer {REALM}"
INVALID = f'Bearer {REALM}, error="invalid_token"'
MESSAGES = {
    "INVALID_TOKEN": "The provided authentication token is invalid",
    "TOKEN_EXPIRED": "The provided authentication token has expired",
    "INSUFFICIENT_SCOPE": "The provided authentication token does not grant the required scope",
    "INVALID_API_KEY": "The provided API key is invalid",
}


def protected_app(verifier, api_keys=None) -> Flask:
    app = Flask(__name__)
    ResourceAuth(app, verifier, api_keys)

    @app.get("/things")
    @require_auth("read:users")
    def things():
        return {"sub": current_principal().subject, "client_id": g.principal.client_id}

    @app.get("/admin")
    @require_auth("read:users", "admin:all")
    def admin():
        return {"ok": True}

    return app


@pytest.fixture
def api(server, clock):
    return protected_app(make_verifier(server, clock)).test_client()


@pytest.fixture
def key_api(server, clock):
    """An app that also accepts API keys, introspected at the live server."""
    keys = JWKSCache(server.issuer)
    api_keys = APIKeyVerifier.from_discovery(keys, server.client_id, server.client_secret)
    return protected_app(make_verifier(server, clock), api_keys).test_client()


@pytest.fixture(scope="module")
def token(server) -> str:
    return server.client_token("read:users")


def assert_refused(response, status: int, code: str, challenge: str):
    assert response.status_code == status
    assert response.get_json() == {"error": {"code": code, "message": MESSAGES[code], "status": status}}
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_a_valid_token_reaches_the_view_with_its_principal(server, api, token, scheme):
    response = api.get("/things", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200
    assert response.get_json() == {"sub": server.client_id, "client_id": server.client_id}


@pytest.mark.parametrize("headers", [
    [],
    [("Authorization", "")],
    [("Authorization", "   ")],
    [("Authorization", "Basic dXNlcjpwYXNz")],
    [("Authorization", "Token abc")],
], ids=["missing", "empty", "blank", "Basic", "other scheme"])
def test_no_bearer_credentials_get_a_bare_challenge(api, headers):
    assert_refused(api.get("/things", headers=headers), 401, "INVALID_TOKEN", BARE)


BAD_HEADERS = {
    "Bearer alone": lambda t: [("Authorization", "Bearer")],
    "Bearer and a space": lambda t: [("Authorization", "Bearer ")],
    "two spaces": lambda t: [("Authorization", f"Bearer  {t}")],
    "leading space": lambda t: [("Authorization", f" Bearer {t}")],
    "trailing space": lambda t: [("Authorization", f"Bearer {t} ")],
    "a tab": lambda t: [("Authorization", f"Bearer\t{t}")],
    "two tokens": lambda t: [("Authorization", f"Bearer {t} {t}")],
    "doubled header": lambda t: [("Authorization", f"Bearer {t}"), ("Authorization", f"Bearer {t}")],
    "Bearer then Basic": lambda t: [("Authorization", f"Bearer {t}"), ("Authorization", "Basic dXNlcjpwYXNz")],
    "not a b64token": lambda t: [("Authorization", "Bearer abc,def")],
    "a bad token": lambda t: [("Authorization", "Bearer abc.def.ghi")],
    "a tampered token": lambda t: [("Authorization", f"Bearer {t[:-4]}AAAA")],
}


@pytest.mark.parametrize("make_headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_credentials_get_invalid_token(api, token, make_headers):
    assert_refused(api.get("/things", headers=make_headers(token)), 401, "INVALID_TOKEN", INVALID)


def test_an_expired_token_gets_token_expired(server, api):
    now = int(time.time())
    expired = server.sign(server.claims(iat=now - 7200, exp=now - 3600))
    response = api.get("/things", headers={"Authorization": f"Bearer {expired}"})
    assert_refused(response, 401, "TOKEN_EXPIRED", INVALID)


def test_missing_scopes_get_insufficient_scope(api, token):
    response = api.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert_refused(response, 403, "INSUFFICIENT_SCOPE",
                   f'Bearer {REALM}, error="insufficient_scope", scope="read:users admin:all"')


def test_the_realm_can_be_set(server, clock, token):
    app = Flask(__name__)
    ResourceAuth(app, make_verifier(server, clock), realm="techdocs-api")
    app.add_url_rule("/x", view_func=require_auth()(lambda: "ok"))
    response = app.test_client().get("/x")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="techdocs-api"'
    assert app.test_client().get("/x", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_current_principal_outside_a_protected_view_is_an_error():
    with Flask(__name__).test_request_context("/"), pytest.raises(RuntimeError):
        current_principal()


def test_require_auth_without_resource_auth_is_an_error(token):
    @require_auth()
    def view():
        return "ok"

    with Flask(__name__).test_request_context("/", headers={"Authorization": f"Bearer {token}"}):
        with pytest.raises(RuntimeError):
            view()


@pytest.mark.parametrize("scope", ["", "two words", 'quo"te', None])
def test_require_auth_refuses_what_is_no_scope(scope):
    with pytest.raises(ValueError):
        require_auth(scope)


def test_resource_auth_needs_a_verifier():
    with pytest.raises(ValueError):
        ResourceAuth(Flask(__name__))


# -- API keys ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api_key(server) -> tuple[str, str]:
    return server.api_key("read:users")


def test_an_api_key_reaches_the_view_as_its_account(server, key_api, api_key, token):
    response = key_api.get("/things", headers={"Authorization": f"Bearer {api_key[1]}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["sub"].startswith("user_") and body["client_id"] is None
    # Tokens still go to the JWT verifier on the same app.
    assert key_api.get("/things", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("make_key", [
    lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),
    lambda key: key[:-1],
    lambda key: "tdk_" + "x" * 10,
], ids=["wrong checksum", "truncated", "short"])
def test_a_mistyped_api_key_gets_invalid_api_key_without_introspection(server, key_api, api_key, make_key):
    before = server.requests["/oauth/introspect"]
    response = key_api.get("/things", headers={"Authorization": f"Bearer {make_key(api_key[1])}"})
    assert_refused(response, 401, "INVALID_API_KEY", INVALID)
    assert server.requests["/oauth/introspect"] == before


def test_an_unknown_api_key_gets_invalid_api_key(server, key_api):
    before = server.requests["/oauth/introspect"]
    response = key_api.get("/things", headers={"Authorization": f"Bearer {new_api_key()}"})
    assert_refused(response, 401, "INVALID_API_KEY", INVALID)
    assert server.requests["/oauth/introspect"] == before + 1


def test_an_api_key_where_none_are_accepted_gets_invalid_api_key(api, api_key):
    response = api.get("/things", headers={"Authorization": f"Bearer {api_key[1]}"})
    assert_refused(response, 401, "INVALID_API_KEY", INVALID)


def test_an_api_key_without_the_scope_gets_insufficient_scope(key_api, api_key):
    response = key_api.get("/admin", headers={"Authorization": f"Bearer {api_key[1]}"})
    assert_refused(response, 403, "INSUFFICIENT_SCOPE",
                   f'Bearer {REALM}, error="insufficient_scope", scope="read:users admin:all"')


def test_an_unreachable_server_is_503_for_keys_and_the_service_stays_up(server, clock, api_key, token):
    nowhere = APIKeyVerifier(f"http://{HOST}:{free_port()}/oauth/introspect", server.client_id, server.client_secret)
    app = protected_app(make_verifier(server, clock), nowhere).test_client()
    for _ in range(2):
        response = app.get("/things", headers={"Authorization": f"Bearer {api_key[1]}"})
        assert response.status_code == 503
        assert response.get_json() == {"error": {"code": "SERVICE_UNAVAILABLE", "status": 503,
                                                 "message": "The credential could not be checked right now; try again shortly"}}
        assert response.headers["Retry-After"] == "5" and response.headers["Cache-Control"] == "no-store"
        assert "WWW-Authenticate" not in response.headers
    assert app.get("/things", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_token_whose_key_cannot_be_fetched_is_503_not_401(server, token):
    """The issuer out of reach before any key was learnt: the token may be good, so the client is
    told to try again rather than to drop it."""
    nowhere = f"http://{HOST}:{free_port()}"
    app = protected_app(TokenVerifier(nowhere, AUDIENCE, keys=JWKSCache(nowhere, timeout=1))).test_client()
    response = app.get("/things", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5" and "WWW-Authenticate" not in response.headers
