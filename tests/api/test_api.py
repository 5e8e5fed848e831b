"""The sample API service (authserver/api) against the real authorization server: real tokens
from its token endpoint, its discovery and JWKS served over HTTP, the API called in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from authserver.api import ApiConfig, ApiConfigError, create_api_app, load_api_config
from authserver.api.app import EXTENSION

from ..e2e.processes import free_port
from ..resource.live import AUDIENCE, USER_SCOPE
from .conftest import make_api
from .test_usage_meter import account_usage

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


# -- API keys ----------------------------------------------------------------------------

@pytest.fixture
def keyed_api(server):
    """An API app with the live server's client as its own: it accepts API keys and meters (flushing
    only when told)."""
    app = create_api_app(ApiConfig(issuer=server.issuer, audience=AUDIENCE, client_id=server.client_id,
                                   client_secret=server.client_secret, usage_flush_seconds=3600,
                                   api_key_cache_seconds=5))
    yield app
    state = app.extensions[EXTENSION]
    state.meter.close()
    state.limiter.close()


def test_an_api_key_is_accepted_and_counted_for_its_key(server, keyed_api):
    key_id, key = server.api_key("read:users")
    account, before = account_usage(server)
    client = keyed_api.test_client()
    response = client.get("/v1/users", headers=bearer(key))
    assert response.status_code == 200
    assert response.get_json()["data"] == [{"id": account, "type": "user", "plan": "pro", "name": None, "email": None}]
    assert response.headers["X-RateLimit-Limit"] == "500"  # the account's plan, from introspection
    me = client.get("/v1/users/me", headers=bearer(key)).get_json()
    assert (me["id"], me["type"], me["client_id"], me["key_id"], me["scopes"]) == (account, "user", None, key_id, ["read:users"])

    meter = keyed_api.extensions[EXTENSION].meter
    [(counted, count)] = meter.pending_counts().items()
    assert counted[:2] == (account, key_id) and count == 2
    assert meter.flush() is True
    _, after = account_usage(server)
    assert after.get(key_id, 0) - before.get(key_id, 0) == 2
    assert keyed_api.extensions[EXTENSION].api_keys.ttl == 5  # AUTHSERVER_API_KEY_CACHE_SECONDS


def test_a_token_says_it_is_no_key(server, keyed_api):
    me = keyed_api.test_client().get("/v1/users/me", headers=bearer(server.client_token("read:users"))).get_json()
    assert me["client_id"] == server.client_id and me["key_id"] is None


def test_an_api_key_without_the_scope_is_403(server, keyed_api):
    _, key = server.api_key("write:data")
    response = keyed_api.test_client().get("/v1/users", headers=bearer(key))
    assert_envelope(response, 403, "INSUFFICIENT_SCOPE")


def test_a_mistyped_api_key_is_401_invalid_api_key(server, keyed_api):
    _, key = server.api_key("read:users")
    response = keyed_api.test_client().get("/v1/users", headers=bearer(key[:-1] + ("A" if key[-1] != "A" else "B")))
    assert_envelope(response, 401, "INVALID_API_KEY")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_without_client_credentials_api_keys_are_refused(server, client):
    _, key = server.api_key("read:users")
    assert_envelope(client.get("/v1/users", headers=bearer(key)), 401, "INVALID_API_KEY")


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
    assert ApiConfig().api_key_cache_seconds == 30
    assert load_api_config({"AUTHSERVER_API_KEY_CACHE_SECONDS": "0"}).api_key_cache_seconds == 0
    assert load_api_config({"AUTHSERVER_API_KEY_CACHE_SECONDS": "2.5"}).api_key_cache_seconds == 2.5


def test_the_client_secret_is_not_in_the_config_repr():
    config = ApiConfig(client_id="client_1", client_secret="s3cr3t-value")
    assert "client_1" in repr(config) and "s3cr3t-value" not in repr(config)


@pytest.mark.parametrize("name, value", [
    ("AUTHSERVER_ISSUER", "ftp://auth.example.com"),
    ("AUTHSERVER_ISSUER", "https://auth.example.com/?x=1"),
    ("AUTHSERVER_REDIS_URL", "mysql://x"),
    ("AUTHSERVER_RATELIMIT_PREFIX", "has space"),
    ("AUTHSERVER_API_KEY_CACHE_SECONDS", "-1"),
    ("AUTHSERVER_API_KEY_CACHE_SECONDS", "3601"),
    ("AUTHSERVER_API_KEY_CACHE_SECONDS", "soon"),
    ("AUTHSERVER_API_KEY_CACHE_SECONDS", "nan"),
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
