"""Throttling of sign-in, password change and sign-up (authserver.web.sign_in_limits), counted in
memory and (tests marked `both_storages`) in a real Redis; a Redis that does not answer falls back
to counting in memory.

Client addresses come from X-Forwarded-For through one trusted proxy, as in production behind a
load balancer. The Redis is a private redis-server (tests/stores.py), emptied before each test.
Every wrong password costs an Argon2 verification, so the slow per-address tests run once.
"""

from __future__ import annotations

import logging
import time

import pytest
import redis

from authserver.app import create_app
from authserver.throttle import Throttle
from authserver.web.sign_in_limits import SIGN_IN_PER_ACCOUNT, address_key

from ..conftest import PASSWORD
from ..helpers import csrf_token, signed_in_as
from ..stores import RedisServer, free_port
from ..throttle_storages import both_storages, redis_server, redis_url, settings_overrides  # noqa: F401 - fixtures
from .stored_state import unchanged

WRONG = "not the password at all"
HERE = "203.0.113.10"


class Browser:
    """One browser at one client address."""

    def __init__(self, app, address: str = HERE) -> None:
        self.client = app.test_client()
        self.headers = {"X-Forwarded-For": address}

    def get(self, path):
        return self.client.get(path, headers=self.headers)

    def post(self, path, data):
        token = csrf_token(self.get("/login").get_data(as_text=True))  # signing in starts a new session
        return self.client.post(path, data={**data, "csrf_token": token}, headers=self.headers)

    def sign_in(self, email, password=PASSWORD):
        return self.post("/login", {"email": email, "password": password})

    def sign_up(self, email, password="plum tractor velvet 1987"):
        return self.post("/signup", {"email": email, "name": "N", "password": password, "confirm": password})


def address(number: int) -> str:
    return f"198.51.100.{number}"


def assert_throttled(response, longest: int):
    assert response.status_code == 429, response.status_code
    assert 1 <= int(response.headers["Retry-After"]) <= longest
    assert "Too many attempts" in response.get_data(as_text=True)


def assert_counted_in_redis(redis_url):
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.keys("authserver-throttle:*"), "nothing was counted in Redis"
        finally:
            client.close()


# -- per account ------------------------------------------------------------------

@both_storages
@pytest.mark.parametrize("exists", [True, False], ids=["existing-account", "unknown-email"])
def test_an_account_is_throttled_after_10_failures_from_any_addresses(app, make_user, redis_url, exists,
                                                                      audit_lines):
    """The same for an email nobody has: the throttle tells nothing about which accounts exist."""
    if exists:
        make_user(email="ada@example.com")
    for number in range(10):
        assert Browser(app, address(number)).sign_in("ADA@example.com ", WRONG).status_code == 401

    late = Browser(app, address(99))
    assert_throttled(late.sign_in("ada@example.com"), 900)
    assert signed_in_as(late.client) is None
    assert_counted_in_redis(redis_url)
    [throttled] = [line for line in audit_lines if line["event"] == "login_throttled"]
    assert throttled["source"] == address(99) and "ada@" not in str(throttled)


def test_once_throttled_the_right_and_a_wrong_password_get_the_same_answer(app, make_user, redis_url):
    """The password is not checked at all: no oracle."""
    make_user(email="ada@example.com")
    browser = Browser(app)
    for _ in range(10):
        browser.sign_in("ada@example.com", WRONG)
    right, wrong = browser.sign_in("ada@example.com"), browser.sign_in("ada@example.com", WRONG)
    assert right.status_code == wrong.status_code == 429
    assert right.get_data() == wrong.get_data()
    assert signed_in_as(browser.client) is None


@both_storages
def test_a_correct_password_clears_the_accounts_count(app, make_user, redis_url):
    make_user(email="ada@example.com")
    for number in range(9):
        assert Browser(app, address(number)).sign_in("ada@example.com", WRONG).status_code == 401
    assert Browser(app, address(50)).sign_in("ada@example.com").status_code == 302
    for number in range(10):
        assert Browser(app, address(100 + number)).sign_in("ada@example.com", WRONG).status_code == 401
    assert_throttled(Browser(app, address(200)).sign_in("ada@example.com"), 900)


def test_other_accounts_are_not_throttled_by_one(app, make_user, redis_url):
    make_user(email="ada@example.com")
    make_user(email="grace@example.com")
    for number in range(10):
        Browser(app, address(number)).sign_in("ada@example.com", WRONG)
    assert Browser(app, address(11)).sign_in("grace@example.com").status_code == 302


def test_wrong_current_passwords_count_as_failed_sign_ins(app, make_user, redis_url):
    make_user(email="ada@example.com")
    browser = Browser(app)
    assert browser.sign_in("ada@example.com").status_code == 302
    new = "seven quiet harbour lamps"
    for _ in range(10):
        response = browser.post("/dashboard/account", {"current_password": WRONG, "password": new, "confirm": new})
        assert response.status_code == 400
    assert_throttled(browser.post("/dashboard/account", {"current_password": PASSWORD, "password": new,
                                                         "confirm": new}), 900)
    assert_throttled(Browser(app, address(1)).sign_in("ada@example.com"), 900)


# -- per address ------------------------------------------------------------------

@both_storages
def test_an_address_is_throttled_after_50_failures_whatever_the_accounts(app, make_user, redis_url):
    """A success in between resets nothing: else an attacker would sign in to an account of
    their own between guesses."""
    make_user(email="mallory@example.com")
    make_user(email="ada@example.com")
    sprayer = Browser(app)
    for number in range(49):
        assert sprayer.sign_in(f"user{number}@example.com", WRONG).status_code == 401
    assert sprayer.sign_in("mallory@example.com").status_code == 302
    assert sprayer.sign_in("user49@example.com", WRONG).status_code == 401
    assert_throttled(sprayer.sign_in("ada@example.com"), 900)
    assert Browser(app, address(1)).sign_in("ada@example.com").status_code == 302
    assert_counted_in_redis(redis_url)


@pytest.mark.parametrize(("first", "second", "same"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", True),
    ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
    ("::ffff:192.0.2.7", "192.0.2.7", True),
    ("192.0.2.7", "192.0.2.8", False),
], ids=["same-64", "other-64", "ipv4-mapped", "ipv4"])
def test_addresses_count_per_ipv4_address_and_per_ipv6_64(app, first, second, same):
    """One subscriber usually holds a whole IPv6 /64: one budget for all of it."""
    with app.test_request_context(environ_base={"REMOTE_ADDR": first}):
        first_key = address_key()
    with app.test_request_context(environ_base={"REMOTE_ADDR": second}):
        second_key = address_key()
    assert (first_key == second_key) is same


# -- sign-up ----------------------------------------------------------------------

@both_storages
def test_sign_ups_are_throttled_per_address(app, database_url, redis_url, audit_lines):
    browser = Browser(app)
    for number in range(10):
        assert browser.sign_up(f"new{number}@example.com").status_code == 302
    with unchanged(database_url):
        assert_throttled(browser.sign_up("one-more@example.com"), 3600)
    assert [line["event"] for line in audit_lines].count("sign_up_throttled") == 1
    assert Browser(app, address(1)).sign_up("one-more@example.com").status_code == 302


def test_a_duplicate_sign_up_counts_too(app, make_user, redis_url):
    make_user(email="taken@example.com")
    browser = Browser(app)
    for _ in range(10):
        assert browser.sign_up("taken@example.com").status_code == 409
    assert_throttled(browser.sign_up("taken@example.com"), 3600)


# -- shared counts and outages ----------------------------------------------------

@pytest.mark.parametrize("redis_url", ["redis"], indirect=True)
def test_workers_sharing_redis_share_the_count(app, settings_overrides, make_user, redis_url):
    other_worker = create_app(settings_overrides)
    make_user(email="ada@example.com")
    for number in range(5):
        assert Browser(app, address(number)).sign_in("ada@example.com", WRONG).status_code == 401
        assert Browser(other_worker, address(number)).sign_in("ada@example.com", WRONG).status_code == 401
    assert_throttled(Browser(app, address(20)).sign_in("ada@example.com"), 900)
    assert_throttled(Browser(other_worker, address(21)).sign_in("ada@example.com"), 900)


def test_an_unreachable_redis_falls_back_to_counting_in_memory(settings_overrides, make_user, caplog):
    """Never a 500, never unthrottled, one warning."""
    app = create_app({**settings_overrides, "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    make_user(email="ada@example.com")
    with caplog.at_level(logging.WARNING, logger="authserver.throttle"):
        for number in range(10):
            assert Browser(app, address(number)).sign_in("ada@example.com", WRONG).status_code == 401
        assert_throttled(Browser(app, address(20)).sign_in("ada@example.com"), 900)
    warnings = [r for r in caplog.records if r.name == "authserver.throttle" and "does not answer" in r.message]
    assert len(warnings) == 1
    assert Browser(app, address(30)).sign_in("nobody@example.com", WRONG).status_code == 401


def test_counting_moves_to_memory_while_redis_is_down_and_back_when_it_answers(caplog):
    port = free_port()
    first, second = RedisServer(port), RedisServer(port)
    throttle = Throttle(first.start().url, recheck_seconds=0.1)
    try:
        assert throttle.acquire(SIGN_IN_PER_ACCOUNT, "account:a") and throttle.shared
        first.stop()
        with caplog.at_level(logging.INFO, logger="authserver.throttle"):
            for _ in range(10):
                assert throttle.acquire(SIGN_IN_PER_ACCOUNT, "account:a")  # counted locally, never raising
            assert not throttle.acquire(SIGN_IN_PER_ACCOUNT, "account:a")  # and still limited
            assert not throttle.shared

            second.start()
            time.sleep(throttle.recheck_seconds)
            assert throttle.acquire(SIGN_IN_PER_ACCOUNT, "account:a")  # a fresh Redis: its count starts over
            assert throttle.shared
        assert_counted_in_redis(second.url)
        messages = [r.getMessage() for r in caplog.records if r.name == "authserver.throttle"]
        assert len(messages) == 2, messages
        assert "does not answer" in messages[0] and "answers again" in messages[1]
    finally:
        first.stop()
        second.stop()
