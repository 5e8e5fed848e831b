"""Throttling of the pages that check or create passwords, so that nobody can guess passwords (or
mass-create accounts) at speed. Counters: `authserver.throttle` (Redis when AUTHSERVER_REDIS_URL
is set, else memory; a local fallback when Redis is down).

- **10 per 15 minutes per account** (a normalised email, whether or not an account has it, so the
  throttle tells nothing about which emails exist): sign-in attempts, and wrong current passwords
  on the password-change form. Each attempt takes its slot *before* the password is checked, so
  concurrent guesses can never exceed the limit; a correct password clears the account's count,
  so the owner is not held back by their own typos once they get in. The cost: each successful
  sign-in of the owner gives an attacker guessing at the same time a fresh 10, which does not
  change the order of magnitude. Like any per-account limit, it lets someone who knows an email
  keep its sign-in paused; the limit is mild (a 15-minute window) for that reason.
- **50 per 15 minutes per client address**: wrong passwords from one address, whatever the
  accounts (password spraying). A success clears nothing: an attacker would interleave sign-ins
  to an account of their own. It is checked before and counted after the password check, so
  requests already in flight when it fills up get past it.
- **10 per hour per client address**: sign-up forms that would create an account (valid ones,
  taken emails included).

When a limit is reached the answer is a 429 page with `Retry-After`, and the password is not
checked at all (neither an oracle nor an Argon2 cost for the attacker to impose).

The client address is `request.remote_addr`, which ProxyFix takes from X-Forwarded-For for the
AUTHSERVER_TRUSTED_PROXIES proxies in front; IPv6 addresses count per /64, the usual allocation of
one subscriber (else each of its 2^64 addresses would get a budget of its own). Keys are SHA-256
digests: the store holds no email or address in clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math

from flask import Flask, current_app, request
from limits import parse

from .. import audit
from ..errors import html_error
from ..settings import Settings
from ..storage.users import normalise_email
from ..throttle import Throttle

log = logging.getLogger(__name__)

EXTENSION_KEY = "authserver.throttle"
SIGN_IN_PER_ACCOUNT = parse("10 per 15 minutes")
SIGN_IN_FAILURES_PER_ADDRESS = parse("50 per 15 minutes")
SIGN_UPS_PER_ADDRESS = parse("10 per hour")


class Throttled(Exception):
    """A limit is reached; rendered as the 429 page by the handler `init_app` registers."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"throttled for {retry_after} s")
        self.retry_after = retry_after


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions[EXTENSION_KEY] = Throttle(settings.redis_url)
    app.register_error_handler(Throttled, _too_many_attempts)


def current_throttle() -> Throttle:
    return current_app.extensions[EXTENSION_KEY]


def begin_password_check(email: str) -> None:
    """Call before checking a password for `email`; raises Throttled instead of letting it be checked."""
    throttle = current_throttle()
    address = address_key()
    if not throttle.allows(SIGN_IN_FAILURES_PER_ADDRESS, address):
        _refuse(throttle, SIGN_IN_FAILURES_PER_ADDRESS, address, "login_throttled")
    account = _account_key(email)
    if not throttle.acquire(SIGN_IN_PER_ACCOUNT, account):
        _refuse(throttle, SIGN_IN_PER_ACCOUNT, account, "login_throttled")


def password_accepted(email: str) -> None:
    current_throttle().reset(SIGN_IN_PER_ACCOUNT, _account_key(email))


def password_refused() -> None:
    current_throttle().acquire(SIGN_IN_FAILURES_PER_ADDRESS, address_key())


def begin_sign_up() -> None:
    """Call before creating an account; raises Throttled when this address has made too many."""
    throttle = current_throttle()
    address = address_key()
    if not throttle.acquire(SIGN_UPS_PER_ADDRESS, address):
        _refuse(throttle, SIGN_UPS_PER_ADDRESS, address, "sign_up_throttled")


def _refuse(throttle: Throttle, limit, key: str, event: str):
    """Refuse with 429, and audit it (`limit` names which: per account, per address)."""
    log.warning("throttled %s %s: limit %s reached", request.method, request.path, limit)
    retry_after = throttle.seconds_until_allowed(limit, key)
    audit.record(event, limit=str(limit), retry_after=retry_after)
    raise Throttled(retry_after)


def _account_key(email: str) -> str:
    return "account:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()


def address_key() -> str:
    """The counting key of this request's client address."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        source = request.remote_addr or "unknown"  # a unix socket or similar: one shared budget
    else:
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        network = ipaddress.ip_network(f"{address}/{64 if address.version == 6 else 32}", strict=False)
        source = str(network)
    return "address:" + hashlib.sha256(source.encode()).hexdigest()


def _too_many_attempts(error: Throttled):
    minutes = math.ceil(error.retry_after / 60)
    wait = "a minute" if minutes == 1 else f"{minutes} minutes"
    body, status = html_error(
        "Too many attempts",
        f"For your security, this is paused for now. Try again in {wait}.",
        429,
    )
    return body, status, {"Retry-After": str(error.retry_after)}
