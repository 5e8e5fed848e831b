"""APIKeyVerifier against the real authorization server (keys made in its database, introspected
over HTTP, its requests counted per path), plus a stand-in that answers what the real server never
does (5xx, garbage, slow answers) to check that such answers never pass for a verdict on a key."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from authserver.resource import (
    APIKeyVerifier,
    InvalidAPIKey,
    JWKSCache,
    ServiceUnavailable,
)
from authserver.resource.api_key_format import new_api_key

from ..e2e.processes import HOST, free_port

INTROSPECT = "/oauth/introspect"


def make_keys(server, clock=None, **options) -> APIKeyVerifier:
    if clock is not None:
        options["clock"] = clock
    return APIKeyVerifier.from_discovery(JWKSCache(server.issuer), server.client_id, server.client_secret, **options)


def introspections(server) -> int:
    return server.requests[INTROSPECT]


def mistyped(key: str) -> str:
    """The key with its last checksum character changed: still base62, the checksum now wrong."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.fixture(scope="module")
def key(server) -> tuple[str, str]:
    return server.api_key("read:users write:data")


# -- a good key ----------------------------------------------------------------------------

def test_a_good_key_gives_its_principal(server, key):
    key_id, secret = key
    principal = make_keys(server).verify(secret)
    assert principal.subject.startswith("user_") and principal.client_id is None
    assert principal.credential_id == principal.token_id == key_id
    assert principal.scopes == ("read:users", "write:data") and principal.has_scopes("write:data")
    assert principal.plan == "pro" and principal.rate_limits is None and principal.expires_at is None
    assert principal.claims["token_type"] == "api_key" and principal.claims["username"] == server.email
    with pytest.raises(TypeError):
        principal.claims["scope"] = "admin"  # read-only


def test_a_key_with_an_expiry_carries_it(server):
    expires_at = int(time.time()) + 3600
    _, secret = server.api_key(expires_at=expires_at)
    assert make_keys(server).verify(secret).expires_at == expires_at


# -- refused keys --------------------------------------------------------------------------

@pytest.mark.parametrize("make_bad", [
    mistyped,
    lambda key: key[:-1],
    lambda key: key + "A",
    lambda key: key.replace("tdk_", "tdk-"),
    lambda key: key[:10] + "-" + key[11:],
    lambda key: key.encode(),
    lambda key: None,
], ids=["wrong checksum", "truncated", "one more", "other separator", "not base62", "bytes", "None"])
def test_a_mistyped_key_is_refused_without_asking_the_server(server, key, make_bad):
    verifier = make_keys(server)
    before = dict(server.requests)
    with pytest.raises(InvalidAPIKey) as refused:
        verifier.verify(make_bad(key[1]))
    assert refused.value.status == 401 and refused.value.envelope()["error"]["code"] == "INVALID_API_KEY"
    assert verifier.introspections == 0 and dict(server.requests) == before  # not even discovery


def test_an_unknown_key_is_refused(server):
    verifier = make_keys(server)
    with pytest.raises(InvalidAPIKey):
        verifier.verify(new_api_key())
    assert verifier.introspections == 1


def test_a_key_that_expires_is_refused_from_then_on_and_not_cached_beyond(server):
    _, secret = server.api_key(expires_at=int(time.time()) + 2)
    verifier = make_keys(server, ttl=60)
    assert verifier.verify(secret)
    time.sleep(max(0.0, verifier.verify(secret).expires_at - time.time()) + 0.05)
    with pytest.raises(InvalidAPIKey):
        verifier.verify(secret)
    assert verifier.introspections == 2  # the answer was trusted only until the key's exp


# -- the cache -----------------------------------------------------------------------------

def test_an_active_answer_is_cached_for_the_ttl(server, key, clock):
    verifier = make_keys(server, clock, ttl=30)
    before = introspections(server)
    for _ in range(5):
        verifier.verify(key[1])
    assert introspections(server) - before == 1
    clock.advance(29.9)
    verifier.verify(key[1])
    assert introspections(server) - before == 1
    clock.advance(0.1)
    verifier.verify(key[1])
    assert introspections(server) - before == 2


def test_an_inactive_answer_is_cached_for_the_negative_ttl(server, clock):
    verifier = make_keys(server, clock, negative_ttl=10)
    unknown = new_api_key()
    before = introspections(server)
    for _ in range(5):
        with pytest.raises(InvalidAPIKey):
            verifier.verify(unknown)
    assert introspections(server) - before == 1
    clock.advance(10)
    with pytest.raises(InvalidAPIKey):
        verifier.verify(unknown)
    assert introspections(server) - before == 2


def test_a_revoked_key_is_accepted_until_the_ttl_then_refused(server, clock):
    key_id, secret = server.api_key()
    verifier = make_keys(server, clock, ttl=1)
    assert verifier.verify(secret).credential_id == key_id
    server.revoke_api_key(key_id)
    clock.advance(0.9)
    assert verifier.verify(secret).credential_id == key_id  # the revocation delay: at most the ttl
    clock.advance(0.1)
    with pytest.raises(InvalidAPIKey):
        verifier.verify(secret)


def test_the_real_clock_ends_the_cache_too(server):
    key_id, secret = server.api_key()
    verifier = make_keys(server, ttl=0.5)
    verifier.verify(secret)
    server.revoke_api_key(key_id)
    verifier.verify(secret)
    time.sleep(0.5)
    with pytest.raises(InvalidAPIKey):
        verifier.verify(secret)


def test_a_ttl_of_zero_asks_every_time(server, key):
    verifier = make_keys(server, ttl=0, negative_ttl=0)
    for _ in range(3):
        verifier.verify(key[1])
        with pytest.raises(InvalidAPIKey):
            verifier.verify(new_api_key())
    assert verifier.introspections == 6


def test_the_cache_is_bounded_and_forgets_the_oldest(server, clock):
    verifier = make_keys(server, clock, max_entries=2)
    first, second, third = new_api_key(), new_api_key(), new_api_key()
    for key in (first, second, third, third, second):
        with pytest.raises(InvalidAPIKey):
            verifier.verify(key)
    assert verifier.introspections == 3
    with pytest.raises(InvalidAPIKey):
        verifier.verify(first)  # evicted by the third
    assert verifier.introspections == 4


# -- the server cannot tell ------------------------------------------------------------------

def test_an_unreachable_server_is_service_unavailable_and_never_cached(caplog):
    verifier = APIKeyVerifier(f"http://{HOST}:{free_port()}{INTROSPECT}", "client", "secret")
    key = new_api_key()
    with caplog.at_level(logging.DEBUG, logger="authserver.resource"):
        for _ in range(2):
            with pytest.raises(ServiceUnavailable) as unavailable:
                verifier.verify(key)
    error = unavailable.value
    assert error.status == 503 and error.envelope() == {"error": {
        "code": "SERVICE_UNAVAILABLE", "message": error.message, "status": 503}}
    assert verifier.introspections == 2
    assert [record.levelname for record in caplog.records] == ["WARNING", "WARNING"]  # one line each
    assert key not in caplog.text and key not in str(error)


def test_a_server_down_at_discovery_is_service_unavailable(server, key):
    verifier = APIKeyVerifier.from_discovery(
        JWKSCache(f"http://{HOST}:{free_port()}"), server.client_id, server.client_secret)
    with pytest.raises(ServiceUnavailable):
        verifier.verify(key[1])
    assert verifier.introspections == 0


def test_wrong_service_credentials_are_service_unavailable_not_a_bad_key(server, key):
    verifier = APIKeyVerifier.from_discovery(JWKSCache(server.issuer), server.client_id, "wrong-secret")
    with pytest.raises(ServiceUnavailable):
        verifier.verify(key[1])


class StandIn:
    """An HTTP server that answers every POST with `status` and `body` after `delay` seconds and
    keeps what it was sent: a failing authorization server, which the real one cannot be made into."""

    def __init__(self, status: int = 200, body: object = None, delay: float = 0.0):
        self.status, self.delay = status, delay
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.received: list[tuple[dict, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                stand_in.received.append((dict(self.headers), form))
                time.sleep(stand_in.delay)
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Location", "http://example.com/")
                self.end_headers()
                self.wfile.write(stand_in.body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.http.server_port}{INTROSPECT}"
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def stand_in():
    servers = []

    def start(*args, **kwargs) -> StandIn:
        servers.append(StandIn(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def active(**fields) -> dict:
    answer = {"active": True, "token_type": "api_key", "scope": "read:users", "sub": "user_1",
              "key_id": "key_1", "iss": "http://issuer", "iat": 1, "plan": "free", "username": "a@example.com"}
    answer.update(fields)
    return {name: value for name, value in answer.items() if value is not None}


def test_the_request_is_rfc_7662_with_the_services_credentials(stand_in):
    server = stand_in(200, active(rate_limits={"per_hour": 100, "per_minute": None}))
    key = new_api_key()
    principal = APIKeyVerifier(server.url, "svc:id", "p@ss", ttl=0).verify(key)
    assert principal.subject == "user_1" and principal.rate_limits == {"per_hour": 100, "per_minute": None}
    [(headers, form)] = server.received
    assert form == {"token": [key], "token_type_hint": ["api_key"]}
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Authorization"] == "Basic c3ZjJTNBaWQ6cCU0MHNz"  # svc%3Aid:p%40ss (RFC 6749 §2.3.1)


@pytest.mark.parametrize("status, body", [
    (500, {"active": False}),
    (503, b"busy"),
    (401, {"error": "invalid_client"}),
    (302, {"active": False}),  # redirects are not followed
    (200, b"not json"),
    (200, []),
    (200, {"active": "true"}),
    (200, {"inactive": True}),
    (200, active(sub=None)),
    (200, active(key_id="")),
    (200, active(scope=["read:users"])),
    (200, active(exp="soon")),
    (200, active(rate_limits={"per_hour": 0})),
    (200, active(rate_limits={"per_day": 5})),
    (200, b'{"active": false, "pad": "' + b"x" * 70_000 + b'"}'),
], ids=["500", "503", "401", "302", "not json", "array", "active string", "no active", "no sub", "empty key_id",
        "scope array", "exp string", "zero limit", "unknown limit", "too large"])
def test_what_is_no_verdict_is_service_unavailable_and_never_cached(stand_in, status, body):
    server = stand_in(status, body)
    verifier = APIKeyVerifier(server.url, "client", "secret")
    key = new_api_key()
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            verifier.verify(key)
    assert len(server.received) == 2


@pytest.mark.parametrize("answer", [
    {"active": False},
    active(token_type="Bearer"),
    active(token_type=None),
    active(exp=int(time.time()) - 1),
], ids=["inactive", "a token", "no token_type", "past its exp"])
def test_an_answer_about_no_valid_key_refuses_it(stand_in, answer):
    server = stand_in(200, answer)
    with pytest.raises(InvalidAPIKey):
        APIKeyVerifier(server.url, "client", "secret").verify(new_api_key())


def test_concurrent_requests_for_one_key_share_one_introspection(stand_in):
    server = stand_in(200, active(), delay=0.3)
    verifier = APIKeyVerifier(server.url, "client", "secret")
    key, results = new_api_key(), []
    threads = [threading.Thread(target=lambda: results.append(verifier.verify(key).subject)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["user_1"] * 8 and len(server.received) == 1


def test_requests_waiting_on_a_failed_introspection_fail_with_it(stand_in):
    server = stand_in(500, {}, delay=0.3)
    verifier = APIKeyVerifier(server.url, "client", "secret")
    key, outcomes = new_api_key(), []

    def verify():
        try:
            verifier.verify(key)
        except ServiceUnavailable:
            outcomes.append("503")

    threads = [threading.Thread(target=verify) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["503"] * 4 and len(server.received) == 1


@pytest.mark.parametrize("args, options", [
    (("/oauth/introspect", "client", "secret"), {}),
    (("ftp://auth/introspect", "client", "secret"), {}),
    (("https://auth/introspect", "", "secret"), {}),
    (("https://auth/introspect", "client", ""), {}),
    (("https://auth/introspect", "client", "secret"), {"ttl": -1}),
    (("https://auth/introspect", "client", "secret"), {"negative_ttl": -1}),
    (("https://auth/introspect", "client", "secret"), {"max_entries": 0}),
    (("https://auth/introspect", "client", "secret"), {"timeout": 0}),
])
def test_bad_options_are_refused(args, options):
    with pytest.raises(ValueError):
        APIKeyVerifier(*args, **options)
