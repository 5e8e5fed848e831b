"""50 sign-ups for one email at once, over real HTTP, against `authserver serve` with two workers:
one account; every other request gets the form back with a clean 409, never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from authserver.storage.models import User

from ..e2e.by_hand import the_form
from .concurrently import at_once
from .conftest import serving

pytestmark = pytest.mark.e2e

CONCURRENT = 50
EMAIL = "same.person@example.com"
PASSWORD = "fifty sign ups one account"


@pytest.fixture(scope="module")
def server(deployment):
    """Behind one trusted proxy: each request names its own client address in X-Forwarded-For, so the
    sign-up throttle (10 an hour per address) counts each apart, as it would for 50 people."""
    with serving(deployment, AUTHSERVER_TRUSTED_PROXIES="1") as server:
        yield server


def sign_up(server, session, i: int):
    address = {"X-Forwarded-For": f"127.0.{i // 250}.{i % 250 + 1}"}  # loopback addresses, as header text only
    form = the_form(session.get(server.url("/signup"), headers=address, timeout=60))
    return session.post(form.action, headers=address, allow_redirects=False, timeout=60, data={
        **form.hidden, "email": EMAIL, "name": f"Person {i}", "password": PASSWORD, "confirm": PASSWORD,
    })


def test_50_concurrent_sign_ups_with_one_email_make_one_account(server, database):
    responses = at_once(CONCURRENT, lambda session, i: sign_up(server, session, i))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [302] + [409] * (CONCURRENT - 1), statuses
    for response in responses:
        if response.status_code == 409:
            assert "An account with this email already exists" in response.text
    with database.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User).where(User.email == EMAIL)) == 1
