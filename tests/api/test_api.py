"""The sample API service (authserver/api) against the real authorization server: real tokens
from its token endpoint, its discovery and JWKS served over HTTP, the API called in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from authserver.api import ApiConfig, ApiConfigError, load_api_config
from authserver.api.app import EXTENSION

from ..e2e.processes import free_port
from ..resource.live import AUDIENCE, USER_SCOPE
from .conftest import make_api

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}
    assert body["error"]["code"] == code and body["error"]["status"] == status and body["error"]["message"]
    return body


# -- routes ------------------------------------------------------------------------

def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_users_with_read_scope(server, client):
    response = client.get("/v1/users", headers=bearer(server.client_token("read:users")))
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"data": [{"id": server.client_id, "type": "client", "plan": "free", "name": None, "email": None}],
                    "has_more": False, "total": 1}
    # A client_credentials token has no plan: it counts as free (50/minute is the tightest limit).
    assert response.headers["X-RateLimit-Limit"] == "50"
    assert response.headers["X-RateLimit-Remaining"] == "49"
    assert int(response.headers["X-RateLimit-Reset"]) > 0


def test_me_with_a_user_token(server, client):
    tokens = server.user_tokens()
    response = client.get("/v1/users/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"].startswith("user_") and body["type"] == "user"
    assert body["plan"] == "pro" and body["client_id"] == server.client_id and body["email"] == server.email
    assert set(body["scopes"]) == set(USER_SCOPE.split())
    assert response.headers["X-RateLimit-Limit"] == "500"


def test_missing_token_is_401_with_a_bare_challenge(client):
    response = client.get("/v1/users")
    assert_envelope(response, 401, "INVALID_TOKEN")
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{AUDIENCE}"'
    assert not any(name in response.headers for name in RATE_HEADERS)


def test_invalid_token_is_401(client):
    response = client.get("/v1/users/me", headers=bearer("not.a.token"))
    assert_envelope(response, 401, "INVALID_TOKEN")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_insufficient_scope_is_403_and_not_counted(server, client):
    token = server.client_token("read:users")
    response = client.post("/v1/data", json={"a": 1}, headers=bearer(token))
    assert_envelope(response, 403, "INSUFFICIENT_SCOPE")
    assert 'scope="write:data"' in response.headers["WWW-Authenticate"]
    assert client.get("/v1/users", headers=bearer(token)).headers["X-RateLimit-Remaining"] == "49"


def test_post_data_echoes_the_object(server, client):
    response = client.post("/v1/data", json={"title": "Hello", "tags": ["a"]},
                           headers=bearer(server.client_token("write:data")))
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("data_") and body["owner"] == server.client_id and body["created_at"]
    assert body["data"] == {"title": "Hello", "tags": ["a"]}
    assert response.headers["Location"] == f"/v1/data/{body['id']}"
    assert all(name in response.headers for name in RATE_HEADERS)


@pytest.mark.parametrize("data, content_type", [
    ("{not json", "application/json"),
    ("[1, 2]", "application/json"),
    ('{"a": 1}', "text/plain"),
    ("", "application/json"),
])
def test_post_data_bad_input_is_400(server, client, data, content_type):
    response = client.post("/v1/data", data=data, content_type=content_type,
                           headers=bearer(server.client_token("write:data")))
    assert_envelope(response, 400, "INVALID_REQUEST")
    assert response.headers["X-RateLimit-Remaining"] == "49"  # counted: it got past authentication


def test_not_found_and_method_not_allowed_are_envelopes(client):
    assert_envelope(client.get("/v1/nothing-here"), 404, "NOT_FOUND")
    response = client.delete("/v1/users")
    assert_envelope(response, 405, "INVALID_REQUEST")
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_413_envelope(server, client):
    response = client.post("/v1/data", data=json.dumps({"x": "y" * 70_000}), content_type="application/json",
                           headers=bearer(server.client_token("write:data")))
    assert_envelope(response, 413, "INVALID_REQUEST")


def test_unexpected_error_is_500_envelope(server):
    app = make_api(server.issuer)
    try:
        app.add_url_rule("/boom", view_func=lambda: 1 / 0)
        response = app.test_client().get("/boom")
        assert_envelope(response, 500, "INTERNAL_ERROR")
        assert "ZeroDivision" not in response.get_data(as_text=True)
    finally:
        app.extensions[EXTENSION].limiter.close()


# -- rate limits -----------------------------------------------------------------------

def test_free_burst_51st_request_in_a_minute_is_429(server, client):
    token = server.client_token("read:users")
    for number in range(1, 51):
        response = client.get("/v1/users", headers=bearer(token))
        assert response.status_code == 200, number
        assert response.headers["X-RateLimit-Remaining"] == str(50 - number)
    response = client.get("/v1/users", headers=bearer(token))
    body = assert_envelope(response, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == "50" and response.headers["X-RateLimit-Remaining"] == "0"
    assert body["error"]["message"]
    # The count is per account: another of the account's tokens is refused too.
    assert client.get("/v1/users/me", headers=bearer(server.client_token("read:users"))).status_code == 429


def test_authentication_comes_before_the_rate_limit(server, client):
    token = server.client_token("read:users")
    for _ in range(50):
        client.get("/v1/users", headers=bearer(token))
    assert client.get("/v1/users").status_code == 401  # not 429: who is asking is not known


def test_enterprise_custom_limits_from_the_token(server, client):
    limited = server.sign(server.claims(sub="user_ent1", plan="enterprise", rate_limits={"per_minute": 2}))
    assert [client.get("/v1/users", headers=bearer(limited)).status_code for _ in range(3)] == [200, 200, 429]
    unlimited = client.get("/v1/users", headers=bearer(server.sign(server.claims(sub="user_ent2", plan="enterprise"))))
    assert unlimited.status_code == 200 and unlimited.headers["X-RateLimit-Limit"] == "unlimited"


def test_steady_state_fetches_discovery_and_jwks_once(server, api, client):
    token = server.client_token("read:users")
    for _ in range(20):
        assert client.get("/v1/users/me", headers=bearer(token)).status_code == 200
    keys = api.extensions[EXTENSION].verifier.keys
    assert (keys.discovery_fetches, keys.jwks_fetches) == (1, 1)


# -- POST /v1/auth/refresh ------------------------------------------------------------

def test_refresh_is_forwarded_unchanged(server, client):
    bogus = {"refresh_token": "not-a-refresh-token"}
    direct = server.app.test_client().post("/v1/auth/refresh", json=bogus, auth=(server.client_id, server.client_secret))
    forwarded = client.post("/v1/auth/refresh", json=bogus, auth=(server.client_id, server.client_secret))
    assert forwarded.status_code == direct.status_code >= 400
    assert forwarded.get_json() == direct.get_json()
    assert forwarded.content_type == direct.content_type

    tokens = server.user_tokens()  # its refresh token is used only here
    response = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]},
                           auth=(server.client_id, server.client_secret))
    assert response.status_code == 200, response.get_json()
    fresh = response.get_json()
    assert fresh["refresh_token"] != tokens["refresh_token"] and fresh["token_type"].lower() == "bearer"
    assert client.get("/v1/users/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_refresh_with_the_server_down_is_502():
    app = make_api(f"http://127.0.0.1:{free_port()}")
    try:
        response = app.test_client().post("/v1/auth/refresh", json={"refresh_token": "x"})
        assert_envelope(response, 502, "INTERNAL_ERROR")
    finally:
        app.extensions[EXTENSION].limiter.close()


# -- settings and isolation ------------------------------------------------------------

def test_settings_from_the_environment():
    assert load_api_config({}) == ApiConfig()
    assert ApiConfig().redis_url == "memory://" and ApiConfig().issuer == "http://127.0.0.1:5000"
    config = load_api_config({"AUTHSERVER_ISSUER": "https://auth.example.com", "AUTHSERVER_API_AUDIENCE": "https://api",
                              "AUTHSERVER_REDIS_URL": "redis://r:6379/1", "AUTHSERVER_RATELIMIT_PREFIX": "p1"})
    assert (config.issuer, config.audience, config.redis_url, config.ratelimit_prefix) == (
        "https://auth.example.com", "https://api", "redis://r:6379/1", "p1")


@pytest.mark.parametrize("name, value", [
    ("AUTHSERVER_ISSUER", "ftp://auth.example.com"),
    ("AUTHSERVER_ISSUER", "https://auth.example.com/?x=1"),
    ("AUTHSERVER_REDIS_URL", "mysql://x"),
    ("AUTHSERVER_RATELIMIT_PREFIX", "has space"),
])
def test_bad_settings_are_one_line_naming_the_variable(name, value):
    with pytest.raises(ApiConfigError) as raised:
        load_api_config({name: value})
    assert name in str(raised.value) and "\n" not in str(raised.value)


FORBIDDEN = ("authserver.storage", "authserver.app", "authserver.oauth", "authserver.settings", "authserver.web",
             "authserver.cli", "authserver.extensions", "authserver.serve", "sqlalchemy", "alembic", "authlib")


@pytest.mark.parametrize("code", [
    "import authserver.api",
    "from authserver.api.app import create_api_app; create_api_app().extensions['authserver.api'].limiter.close()",
])
def test_the_api_imports_no_server_code(code):
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    assert "authserver.api.app" in modules and "flask" in modules
    assert [name for name in modules if name.startswith(FORBIDDEN)] == []
