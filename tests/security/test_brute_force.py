"""RFC 9700 §2.5 and §4.15 context (client authentication), RFC 6749 §10.10 (credential guessing),
§4.13 (headers of TLS-terminating proxies): brute force of sign-in passwords and of client secrets
is throttled (authserver/web/sign_in_limits.py, authserver/web/client_auth_limits.py).

Client addresses come through one trusted proxy's X-Forwarded-For, as behind a load balancer,
except in the §4.13 test, which trusts none. The Redis tests use a private redis-server
(tests/stores.py), emptied per test.
"""

from __future__ import annotations

import json

import pytest
import redis

from authserver.app import create_app
from authserver.web.client_auth_limits import FAILURES_PER_ADDRESS, FAILURES_PER_CLIENT_AND_ADDRESS
from authserver.web.sign_in_limits import SIGN_IN_PER_ACCOUNT

from ..conftest import PASSWORD
from ..helpers import assert_envelope, csrf_token, signed_in_as
from ..throttle_storages import both_storages, redis_server, redis_url, settings_overrides  # noqa: F401 - fixtures
from .conftest import EMAIL

HERE, ELSEWHERE = "203.0.113.10", "203.0.113.77"
WRONG_SECRET = "tds_" + "x" * 43
PER_CLIENT = FAILURES_PER_CLIENT_AND_ADDRESS.amount  # 20
PER_ADDRESS = FAILURES_PER_ADDRESS.amount  # 100


def token_request(client, client_id, secret, *, address=HERE, post=False, path="/oauth/token"):
    data = {"grant_type": "client_credentials", "scope": "read:users"} if path == "/oauth/token" else {"token": "x"}
    headers = {"X-Forwarded-For": address}
    if post:
        return client.post(path, data={**data, "client_id": client_id, "client_secret": secret}, headers=headers)
    return client.post(path, data=data, auth=(client_id, secret), headers=headers)


def assert_throttled(response) -> None:
    assert response.status_code == 429, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["error"] == "slow_down" and body["error_description"], body
    assert set(body) == {"error", "error_description"}
    assert 1 <= int(response.headers["Retry-After"]) <= 300
    assert response.headers["Cache-Control"] == "no-store"


def fail(client, client_id, times, **options) -> None:
    for _ in range(times):
        response = token_request(client, client_id, WRONG_SECRET, **options)
        assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


# -- sign-in ---------------------------------------------------------------------------------------

def test_password_guessing_is_throttled(app, make_user):
    """RFC 6749 §10.10 at the sign-in form: after 10 wrong passwords for an account, even the right
    one is answered 429 and signs nobody in (the password is not checked at all)."""
    make_user(email=EMAIL)
    browser = app.test_client()
    headers = {"X-Forwarded-For": HERE}

    def sign_in(password):
        token = csrf_token(browser.get("/login", headers=headers).get_data(as_text=True))
        return browser.post("/login", data={"email": EMAIL, "password": password, "csrf_token": token}, headers=headers)

    for _ in range(SIGN_IN_PER_ACCOUNT.amount):
        assert sign_in("not the password").status_code == 401
    response = sign_in(PASSWORD)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert signed_in_as(browser) is None


# -- client secrets --------------------------------------------------------------------------------

@both_storages
def test_secret_guessing_is_throttled_before_the_secret_is_compared(app, world, redis_url, audit_lines):
    """RFC 9700 §2.5, RFC 6749 §10.10: after 20 failed authentications of a client from one address,
    that client from that address is answered 429 `slow_down` with Retry-After, even with its right
    secret (the secret is not compared), by either method. Each failure is in the audit log."""
    fail(app.test_client(), world.client_id, PER_CLIENT)
    client = app.test_client()
    assert_throttled(token_request(client, world.client_id, world.secret))
    assert_throttled(token_request(client, world.client_id, world.secret, post=True))
    assert_throttled(token_request(client, world.client_id, WRONG_SECRET))
    failures = [line for line in audit_lines if line["event"] == "client_auth_failed"]
    assert len(failures) == PER_CLIENT and {line["client"] for line in failures} == {world.client_id}
    assert [line["event"] for line in audit_lines].count("client_auth_throttled") == 1
    assert not any(world.secret in json.dumps(line) or WRONG_SECRET in json.dumps(line) for line in audit_lines)


def test_a_secret_presented_as_the_client_id_never_reaches_the_audit_log(app, world, audit_lines):
    """Credentials sent in swapped order (the secret as the client_id): the failure is audited
    without naming the "client", which is then a secret."""
    assert token_request(app.test_client(), world.secret, world.client_id).status_code == 401
    [failure] = [line for line in audit_lines if line["event"] == "client_auth_failed"]
    assert failure["client"] is None
    assert not any(world.secret in json.dumps(line) for line in audit_lines)


def test_introspection_and_revocation_share_the_limit(app, world):
    """RFC 9700 §2.5: every endpoint that authenticates clients counts and honours the same limit,
    so guesses cannot move to /oauth/introspect or /oauth/revoke."""
    client = app.test_client()
    for path in ("/oauth/introspect", "/oauth/revoke"):
        for _ in range(PER_CLIENT // 2):
            assert token_request(client, world.client_id, WRONG_SECRET, path=path).status_code == 401
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        assert_throttled(token_request(client, world.client_id, world.secret, path=path))


def test_a_throttled_client_still_authenticates_from_elsewhere(app, world):
    """The limit is per client *and* address: a client_id is public, so failing on purpose from one
    address must not lock the client out of its own token endpoint everywhere."""
    fail(app.test_client(), world.client_id, PER_CLIENT)
    assert token_request(app.test_client(), world.client_id, world.secret, address=ELSEWHERE).status_code == 200
    assert token_request(app.test_client(), world.other_id, world.other_secret).status_code == 200


def test_spraying_client_ids_from_one_address_is_throttled(app, world):
    """RFC 9700 §2.5: failures count per address whatever the client_id (unknown ids too, so the
    limit tells nothing about which clients exist): after 100, every client is refused there."""
    client = app.test_client()
    for number in range(PER_ADDRESS):
        response = token_request(client, f"client_{number:024x}", WRONG_SECRET, post=number % 2 == 1)
        assert response.status_code == 401, number
    assert_throttled(token_request(client, world.client_id, world.secret))
    assert token_request(client, world.client_id, world.secret, address=ELSEWHERE).status_code == 200


def test_forwarded_addresses_are_trusted_only_from_configured_proxies(settings_overrides, world):
    """RFC 9700 §4.13: with no trusted proxy (AUTHSERVER_TRUSTED_PROXIES=0), X-Forwarded-For is the
    caller's own claim: changing it on every guess does not buy a fresh budget."""
    app = create_app({**settings_overrides, "trusted_proxies": 0})
    client = app.test_client()
    for number in range(PER_CLIENT):
        response = token_request(client, world.client_id, WRONG_SECRET, address=f"198.51.100.{number}")
        assert response.status_code == 401
    assert_throttled(token_request(client, world.client_id, world.secret, address="198.51.100.250"))


@pytest.mark.parametrize("redis_url", ["redis"], indirect=True)
def test_successful_authentication_costs_no_round_trip(app, world, redis_url):
    """The success path reads only this process's memory: token requests with the right secret
    send no command to Redis (failures do: they are counted there)."""
    store = redis.Redis.from_url(redis_url)
    try:
        def commands() -> int:
            return store.info("stats")["total_commands_processed"]  # INFO itself counts one

        client = app.test_client()
        before = commands()
        for _ in range(5):
            assert token_request(client, world.client_id, world.secret).status_code == 200
        between = commands()
        assert token_request(client, world.client_id, WRONG_SECRET).status_code == 401
        after = commands()
    finally:
        store.close()
    assert between - before == 1, between - before
    assert after - between > 1


@pytest.mark.parametrize("redis_url", ["redis"], indirect=True)
def test_two_instances_share_the_count(settings_overrides, world, redis_url):
    """Behind a load balancer: failures at one instance count at another (shared Redis). The other
    instance learns of the reached limit at its first failure there, answers it 429 and from then
    on refuses the right secret too (the documented cost of a success path without round trips:
    at most one extra guess per process per window)."""
    first, second = create_app(settings_overrides), create_app(settings_overrides)
    fail(first.test_client(), world.client_id, PER_CLIENT)
    client = second.test_client()
    assert_throttled(token_request(client, world.client_id, WRONG_SECRET))
    assert_throttled(token_request(client, world.client_id, world.secret))


def test_the_v1_refresh_endpoint_answers_a_throttled_client_with_429(app, world):
    """`POST /v1/auth/refresh` runs the token endpoint's grant, so it honours the same limit, and
    says so in its own envelope: 429 RATE_LIMIT_EXCEEDED with Retry-After (DESIGN.md, Errors)."""
    fail(app.test_client(), world.client_id, PER_CLIENT)
    response = app.test_client().post("/v1/auth/refresh", json={"refresh_token": "rt_x"},
                                      auth=(world.client_id, world.secret), headers={"X-Forwarded-For": HERE})
    assert_envelope(response, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= int(response.headers["Retry-After"]) <= 300
