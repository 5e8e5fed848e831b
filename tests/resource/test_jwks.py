"""The key cache against the real server's discovery and JWKS: how often it fetches (counted by
the cache itself), following a key rotation, a server that stops answering, and which published
keys it accepts."""

from __future__ import annotations

import threading

import pytest

from authserver.resource import InvalidToken, JWKSCache, ServiceUnavailable
from authserver.resource.jwks import FetchError, acceptable_keys, cache_lifetime

from .conftest import COOLDOWN, MAX_MAX_AGE, MIN_MAX_AGE, make_verifier
from .live import kid_of


def fetches(verifier) -> tuple[int, int]:
    return verifier.keys.discovery_fetches, verifier.keys.jwks_fetches


def test_steady_state_makes_no_network_call(server, verifier, clock):
    tokens = [server.client_token() for _ in range(3)]
    for _ in range(20):
        for token in tokens:
            verifier.verify(token)
        clock.advance(1)
    assert fetches(verifier) == (1, 1)


def test_concurrent_first_verifications_fetch_once(server, verifier):
    token = server.client_token()
    errors = []

    def verify_many():
        try:
            for _ in range(10):
                verifier.verify(token)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=verify_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert fetches(verifier) == (1, 1)


def test_the_served_max_age_decides_when_the_set_is_fetched_again(server, verifier, clock):
    # The server serves the JWKS with max-age=300 (web/wellknown.py), inside [60, 3600].
    token = server.client_token()
    verifier.verify(token)
    clock.advance(299)
    verifier.verify(token)
    assert fetches(verifier) == (1, 1)
    clock.advance(1)
    verifier.verify(token)
    assert fetches(verifier) == (1, 2)  # discovery is not read again
    verifier.verify(token)
    assert fetches(verifier) == (1, 2)


def test_the_ceiling_caps_the_served_max_age(server, clock):
    verifier = make_verifier(server, clock, max_max_age=100)
    token = server.client_token()
    verifier.verify(token)
    clock.advance(100)
    verifier.verify(token)
    assert fetches(verifier) == (1, 2)


def test_an_unknown_kid_refetches_once_per_cooldown(server, verifier, clock):
    verifier.verify(server.client_token())
    assert fetches(verifier) == (1, 1)
    clock.advance(COOLDOWN)
    for n in range(50):
        with pytest.raises(InvalidToken):
            verifier.verify(server.sign(kid=f"made-up-{n}"))
    assert fetches(verifier) == (1, 2)  # one refetch, then refusals from the cache
    clock.advance(COOLDOWN - 1)
    with pytest.raises(InvalidToken):
        verifier.verify(server.sign(kid="made-up-again"))
    assert fetches(verifier) == (1, 2)
    clock.advance(1)
    with pytest.raises(InvalidToken):
        verifier.verify(server.sign(kid="made-up-again"))
    assert fetches(verifier) == (1, 3)


def test_after_a_rotation_the_new_kid_is_accepted_after_one_refetch(fresh_server, clock):
    verifier = make_verifier(fresh_server, clock)
    old_token = fresh_server.client_token()
    verifier.verify(old_token)
    new_kid = fresh_server.rotate()
    new_token = fresh_server.client_token()
    assert kid_of(new_token) == new_kid != kid_of(old_token)
    clock.advance(COOLDOWN)
    assert verifier.verify(new_token).client_id == fresh_server.client_id
    assert fetches(verifier) == (1, 2)
    assert verifier.verify(old_token)  # the retired key is still published
    assert fetches(verifier) == (1, 2)


def test_a_rotation_within_the_cooldown_waits_for_it(fresh_server, clock):
    verifier = make_verifier(fresh_server, clock)
    verifier.verify(fresh_server.client_token())
    fresh_server.rotate()
    new_token = fresh_server.client_token()
    with pytest.raises(InvalidToken):
        verifier.verify(new_token)  # fail closed: the cool-down also bounds a real rotation's refetch
    assert fetches(verifier) == (1, 1)
    clock.advance(COOLDOWN)
    assert verifier.verify(new_token)
    assert fetches(verifier) == (1, 2)


def test_keys_outlive_failed_fetches_until_the_ceiling_then_fail_closed(fresh_server, clock):
    verifier = make_verifier(fresh_server, clock)
    token = fresh_server.client_token()
    verifier.verify(token)
    fresh_server.stop_http()
    clock.advance(MIN_MAX_AGE * 10)  # stale: the fetch fails, the keys stay
    assert verifier.verify(token)
    assert fetches(verifier) == (1, 2)
    clock.advance(MAX_MAX_AGE - MIN_MAX_AGE * 10 - 1)
    assert verifier.verify(token)
    clock.advance(1)  # the ceiling since the last successful fetch
    with pytest.raises(ServiceUnavailable):  # refused, as "try again": the token may be good
        verifier.verify(token)


def test_no_server_means_no_keys_and_fails_closed(fresh_server, clock):
    token = fresh_server.client_token()
    fresh_server.stop_http()
    verifier = make_verifier(fresh_server, clock, timeout=2)
    for _ in range(5):
        with pytest.raises(ServiceUnavailable):  # 503, not 401: the token may be good
            verifier.verify(token)
    assert fetches(verifier) == (1, 0)  # failed discovery, then the cool-down


def test_discovery_naming_another_issuer_fails_closed(server, clock):
    # The same server, configured as "…/": the document says the issuer without the slash.
    cache = JWKSCache(server.issuer + "/", clock=clock)
    assert cache.get_key(kid_of(server.client_token())) is None
    assert (cache.discovery_fetches, cache.jwks_fetches) == (1, 0)


def test_discovery_and_keys_from_the_real_server(server, clock):
    cache = JWKSCache(server.issuer, clock=clock)
    key = cache.get_key(server.active_key().kid)
    assert key is not None
    assert key.as_dict(private=False)["n"] == server.active_key().public_jwk()["n"]
    assert "d" not in key.as_dict()
    assert cache.fetches == 2


@pytest.fixture(scope="module")
def published(server) -> dict:
    return server.active_key().public_jwk()  # kty RSA, alg RS256, use sig, kid


@pytest.mark.parametrize("change, accepted", [
    ({}, True),
    ({"alg": None}, True),
    ({"use": None}, True),
    ({"alg": "RS384"}, False),
    ({"alg": "PS256"}, False),
    ({"alg": "HS256"}, False),
    ({"use": "enc"}, False),
    ({"kid": None}, False),
    ({"kid": ""}, False),
    ({"kty": "EC"}, False),
    ({"n": "AQAB"}, False),  # a 17-bit modulus
    ({"n": None}, False),
])
def test_which_published_keys_are_accepted(published, change, accepted):
    entry = {k: v for k, v in {**published, **change}.items() if v is not None}
    keys = acceptable_keys({"keys": [entry, "not an object"]})
    assert (list(keys) == [published["kid"]]) is accepted
    assert len(keys) <= 1


def test_a_private_key_entry_is_ignored(server):
    private = {**server.active_key().key.as_dict(private=True), "kid": "k", "alg": "RS256", "use": "sig"}
    assert acceptable_keys({"keys": [private]}) == {}


@pytest.mark.parametrize("document", [None, [], {}, {"keys": {}}, "keys"])
def test_a_document_that_is_no_key_set_is_a_fetch_error(document):
    with pytest.raises(FetchError):
        acceptable_keys(document)


@pytest.mark.parametrize("header, seconds", [
    ("public, max-age=300", 300),
    ("max-age=0", 60),
    ("max-age=86400, public", 3600),
    ('max-age="120"', 120),
    ("MAX-AGE=120", 120),
    ("s-maxage=600", 60),
    ("no-store", 60),
    ("no-cache, max-age=300", 60),
    ("max-age=abc", 60),
    ("", 60),
    (None, 60),
])
def test_cache_lifetime_is_max_age_clamped(header, seconds):
    assert cache_lifetime(header, floor=60, ceiling=3600) == seconds


@pytest.mark.parametrize("options", [
    dict(min_max_age=0), dict(min_max_age=100, max_max_age=50), dict(refresh_cooldown=-1), dict(timeout=0),
])
def test_bad_cache_options_are_refused(options):
    with pytest.raises(ValueError):
        JWKSCache("http://127.0.0.1:1", **options)
