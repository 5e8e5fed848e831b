"""Two server instances and two API instances, sharing one database, one Redis and one keys
directory (tests/e2e/cluster.py), behave as one deployment: whatever one instance issues,
rotates, revokes or counts, the other honours at once (or, for signing keys, within the reload
interval).

The Redis is a private redis-server, not the shared test one: the server's sign-in throttle uses
a fixed key prefix and counts per client address, and every test process talks from 127.0.0.1,
so on a shared Redis other runs' failed sign-ins would count against this module's.
"""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import jwt
import pytest
import requests

from ..stores import RedisServer
from .by_hand import pkce_pair, query_of, redirect_location, the_form
from .cluster import cluster_workspace, running_cluster
from .conftest import API_AUDIENCE

pytestmark = pytest.mark.e2e

KEY_RELOAD_SECONDS = 1  # the servers' AUTHSERVER_KEY_RELOAD_SECONDS: short, so the rotation test waits little
API_KEY_CACHE_SECONDS = 1  # the APIs' AUTHSERVER_API_KEY_CACHE_SECONDS: how long an answer about a key is trusted
API_KEY_GRACE_SECONDS = 6  # the rotated API key's grace period: long enough to check it still works
FREE_BURST = 50  # the free plan's requests per minute (authserver/resource/ratelimit.py)
SIGN_IN_LIMIT = 10  # attempts per account per 15 minutes (authserver/web/sign_in_limits.py)

REDIRECT_URI = "https://app.example.com/callback"
API_SCOPE = "read:users write:data"
EMAIL, PASSWORD = "ada@example.com", "two instances correct horse battery"
THROTTLED_EMAIL, THROTTLED_PASSWORD = "grace@example.com", "two instances throttled passphrase"


@pytest.fixture(scope="module")
def redis_url():
    redis_server = RedisServer().start()  # fails under CI=true if redis-server cannot run
    try:
        yield redis_server.url
    finally:
        redis_server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, e2e_database_url, redis_url):
    workspace = cluster_workspace(
        tmp_path_factory, e2e_database_url, redis_url,
        AUTHSERVER_API_AUDIENCE=API_AUDIENCE,
        AUTHSERVER_KEY_RELOAD_SECONDS=str(KEY_RELOAD_SECONDS),
        # No grace window for retried refresh tokens: a reused one is refused, and revokes its family.
        AUTHSERVER_REFRESH_GRACE_SECONDS="0",
    )
    # The CLI steps that do not depend on each other run side by side (each is a process start-up).
    with ThreadPoolExecutor() as pool:
        keys = pool.submit(lambda: [workspace.run("keys", "generate"),  # the active key, then the next one,
                                    workspace.run("keys", "generate")])  # published before the APIs fetch the JWKS
        pool.submit(workspace.run, "db", "upgrade").result()  # the tables, before anything is stored
        clients = {name: pool.submit(created_client, workspace, name, *options) for name, options in {
            "app": ("--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code", "refresh_token",
                    "--scope", f"openid {API_SCOPE} keys:manage"),
            "service": ("--grant-type", "client_credentials", "--scope", API_SCOPE),
            "machine": ("--grant-type", "client_credentials", "--scope", API_SCOPE),
            "burst": ("--grant-type", "client_credentials", "--scope", API_SCOPE),
        }.items()}
        users = [pool.submit(workspace.run, "users", "create", "--email", email, "--name", email.split("@")[0],
                             "--password-stdin", stdin=password + "\n")
                 for email, password in ((EMAIL, PASSWORD), (THROTTLED_EMAIL, THROTTLED_PASSWORD))]
        for step in (keys, *clients.values(), *users):
            step.result()
    facts = {name: client.result() for name, client in clients.items()}
    with running_cluster(workspace, api_settings={
        # The API service's own client: it introspects API keys and reports usage.
        "AUTHSERVER_API_CLIENT_ID": facts["service"][0], "AUTHSERVER_API_CLIENT_SECRET": facts["service"][1],
        "AUTHSERVER_API_KEY_CACHE_SECONDS": str(API_KEY_CACHE_SECONDS),
    }) as cluster:
        cluster.facts.update(facts)
        yield cluster


def created_client(workspace, name: str, *options: str) -> tuple[str, str]:
    client = json.loads(workspace.run("clients", "create", "--name", name, *options))
    return client["client_id"], client["client_secret"]


# -- a browser and client apps, by hand ---------------------------------------------

def authorization_code(server, client: tuple[str, str], scope: str) -> tuple[str, str]:
    """Sign in and allow at `server`; returns the code and its PKCE verifier."""
    verifier, challenge = pkce_pair()
    authorize_url = server.url("/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client[0], "redirect_uri": REDIRECT_URI, "scope": scope,
        "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256",
    }))
    with requests.Session() as browser:
        login_form = the_form(browser.get(authorize_url, timeout=10))  # redirected to /login
        signed_in = browser.post(login_form.action, data={**login_form.hidden, "email": EMAIL, "password": PASSWORD},
                                 allow_redirects=False, timeout=10)
        assert signed_in.status_code == 302, signed_in.text
        answer = browser.get(authorize_url, allow_redirects=False, timeout=10)
        if answer.status_code == 200:  # the consent page; later, consent already given skips it
            consent_form = the_form(answer)
            answer = browser.post(consent_form.action, data={**consent_form.hidden, "decision": "allow"},
                                  allow_redirects=False, timeout=10)
    return query_of(redirect_location(answer))["code"], verifier


def token_request(server, client: tuple[str, str], **params) -> requests.Response:
    # A fresh connection each time: either of the instance's workers may answer.
    return requests.post(server.url("/oauth/token"), data=params, auth=client, headers={"Connection": "close"},
                         timeout=10)


def redeem(server, client, code: str, verifier: str) -> requests.Response:
    return token_request(server, client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI,
                         code_verifier=verifier)


def refresh(server, client, refresh_token: str) -> requests.Response:
    return token_request(server, client, grant_type="refresh_token", refresh_token=refresh_token)


def user_tokens(cluster, scope: str) -> dict:
    """Signed in and allowed at A, the code redeemed at B."""
    code, verifier = authorization_code(cluster.a, cluster.facts["app"], scope)
    response = redeem(cluster.b, cluster.facts["app"], code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def client_token(server, client) -> str:
    response = token_request(server, client, grant_type="client_credentials", scope=API_SCOPE)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def introspect(server, caller, token: str) -> dict:
    response = requests.post(server.url("/oauth/introspect"), data={"token": token}, auth=caller, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def assert_invalid_grant(response: requests.Response) -> None:
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant", response.text


def api_get(api, credential: str) -> requests.Response:
    return requests.get(api.url("/v1/users"), headers={"Authorization": f"Bearer {credential}",
                                                       "Connection": "close"}, timeout=10)


def api_statuses(cluster, credential: str, times: int = 4) -> dict[str, list[int]]:
    """GET /v1/users `times` times at each API instance, fresh connections: all their workers answer."""
    return {api.base_url: [api_get(api, credential).status_code for _ in range(times)] for api in cluster.apis}


def everywhere(cluster, status: int, times: int = 4) -> dict[str, list[int]]:
    return {api.base_url: [status] * times for api in cluster.apis}


# -- the tests ----------------------------------------------------------------------

def test_a_code_issued_by_one_instance_is_redeemed_at_the_other(cluster):
    app, service = cluster.facts["app"], cluster.facts["service"]
    code, verifier = authorization_code(cluster.a, app, f"openid {API_SCOPE}")

    redeemed = redeem(cluster.b, app, code, verifier)
    assert redeemed.status_code == 200, redeemed.text
    tokens = redeemed.json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["iss"] == cluster.workspace.issuer
    assert introspect(cluster.a, service, tokens["access_token"])["active"] is True

    # Single use across instances: replayed at A, the code is refused and what B issued is revoked.
    assert_invalid_grant(redeem(cluster.a, app, code, verifier))
    assert introspect(cluster.a, service, tokens["access_token"]) == {"active": False}
    assert_invalid_grant(refresh(cluster.b, app, tokens["refresh_token"]))


def test_a_refresh_token_rotated_at_one_instance_is_refused_as_reused_at_the_other(cluster):
    app = cluster.facts["app"]
    first = user_tokens(cluster, API_SCOPE)["refresh_token"]

    at_b = refresh(cluster.b, app, first)
    assert at_b.status_code == 200, at_b.text
    at_a = refresh(cluster.a, app, at_b.json()["refresh_token"])  # A honours what B rotated ...
    assert at_a.status_code == 200, at_a.text
    successor = at_a.json()

    # ... and B knows A rotated it: the token A took is a reuse, which revokes the whole family.
    assert_invalid_grant(refresh(cluster.b, app, at_b.json()["refresh_token"]))
    assert_invalid_grant(refresh(cluster.b, app, successor["refresh_token"]))
    assert introspect(cluster.b, app, successor["refresh_token"]) == {"active": False}
    assert introspect(cluster.b, app, successor["access_token"]) == {"active": False}


def test_a_signing_key_rotation_is_served_by_both_instances(cluster):
    machine = cluster.facts["machine"]
    before = {server.base_url: client_token(server, machine) for server in cluster.servers}
    old_kid = jwt.get_unverified_header(before[cluster.a.base_url])["kid"]
    assert {jwt.get_unverified_header(token)["kid"] for token in before.values()} == {old_kid}

    # --force: the rule that a next key must have been published for the JWKS cache lifetime is
    # for production; here both APIs fetched it when they started.
    keys = json.loads(cluster.workspace.run("keys", "rotate", "--force"))["keys"]
    (new_kid,) = [key["kid"] for key in keys if key["state"] == "active"]
    published = {key["kid"] for key in keys}
    assert new_kid != old_kid and old_kid in published

    deadline = time.monotonic() + 10 * KEY_RELOAD_SECONDS + 5
    while not all(served_kids(server) == published and signing_kid(server, machine) == new_kid
                  for server in cluster.servers for _ in range(4)):  # fresh connections: both workers
        assert time.monotonic() < deadline, "an instance kept serving or signing with the old keys"
        time.sleep(0.2)

    # Both APIs accept what either instance signs now, and what it signed before.
    for server in cluster.servers:
        token = client_token(server, machine)
        assert jwt.get_unverified_header(token)["kid"] == new_kid
        assert api_statuses(cluster, token, times=2) == everywhere(cluster, 200, times=2)
    for token in before.values():
        assert api_statuses(cluster, token, times=2) == everywhere(cluster, 200, times=2)


def served_kids(server) -> set[str]:
    response = requests.get(server.url("/.well-known/jwks.json"), headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def signing_kid(server, client) -> str:
    return jwt.get_unverified_header(client_token(server, client))["kid"]


def test_an_api_key_rotated_through_one_instance_is_honoured_by_both_apis(cluster):
    manage = {"Authorization": f"Bearer {user_tokens(cluster, f'{API_SCOPE} keys:manage')['access_token']}"}
    created = requests.post(cluster.a.url("/v1/api-keys"), json={"name": "two instances", "scopes": ["read:users"]},
                            headers=manage, timeout=10)
    assert created.status_code == 201, created.text
    old_key = created.json()["key"]
    assert api_statuses(cluster, old_key) == everywhere(cluster, 200)

    # Rotated through B; the APIs ask A (the issuer) about keys.
    rotated = requests.post(cluster.b.url(f"/v1/api-keys/{created.json()['id']}/rotate"),
                            json={"grace_period_seconds": API_KEY_GRACE_SECONDS}, headers=manage, timeout=10)
    assert rotated.status_code == 201, rotated.text
    new_key, grace_ends = rotated.json()["key"], rotated.json()["replaces"]["expires_at"]

    time.sleep(API_KEY_CACHE_SECONDS + 0.2)  # the APIs' answers about the old key are from after the rotation
    assert time.time() < grace_ends - 2, "the machine is too slow for this grace period"
    assert api_statuses(cluster, old_key) == everywhere(cluster, 200)  # within its grace period
    assert api_statuses(cluster, new_key) == everywhere(cluster, 200)

    time.sleep(max(0.0, grace_ends - time.time()) + API_KEY_CACHE_SECONDS + 0.5)
    refusals = {api.base_url: [(response.status_code, response.json()["error"]["code"])
                               for response in (api_get(api, old_key) for _ in range(4))] for api in cluster.apis}
    assert refusals == {api.base_url: [(401, "INVALID_API_KEY")] * 4 for api in cluster.apis}
    assert api_statuses(cluster, new_key) == everywhere(cluster, 200)


def test_the_free_burst_is_counted_across_both_api_instances(cluster):
    # A client_credentials token carries no plan: it counts as free. The rate-limit key is the
    # account, here the client, which no other test sends to the APIs.
    token = client_token(cluster.b, cluster.facts["burst"])
    answers = [api_get(cluster.apis[n % 2], token) for n in range(FREE_BURST)]  # alternately A and B

    assert [r.status_code for r in answers] == [200] * FREE_BURST
    # One count: each answer, whichever instance gave it, has one request fewer left than the one before.
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers] == list(range(FREE_BURST - 1, -1, -1))
    for api in cluster.apis:
        refused = api_get(api, token)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert int(refused.headers["Retry-After"]) >= 1


def test_failed_sign_ins_are_counted_across_both_instances(cluster):
    answers = [sign_in(cluster.servers[n % 2], THROTTLED_EMAIL, "not the password") for n in range(SIGN_IN_LIMIT)]
    assert [r.status_code for r in answers] == [401] * SIGN_IN_LIMIT

    # The limit is reached in total: both instances now refuse even the right password, unchecked.
    for server in cluster.servers:
        refused = sign_in(server, THROTTLED_EMAIL, THROTTLED_PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "Too many attempts" in refused.text


def sign_in(server, email: str, password: str) -> requests.Response:
    with requests.Session() as browser:
        form = the_form(browser.get(server.url("/login"), timeout=10))
        return browser.post(form.action, data={**form.hidden, "email": email, "password": password},
                            allow_redirects=False, timeout=10)
