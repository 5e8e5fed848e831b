"""The `/v1` API under schemathesis, driven by the app's own `/v1/openapi.json`: requests that
follow the schema (positive) and requests that break it (negative), for every operation,
sent in-process with a real account's credentials — an access token with keys:manage, one
without, a client's Basic credentials — or none. The properties: tests/fuzz/properties.py."""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import event, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.transport import wsgi as wsgi_transport

from .examples import counted
from .properties import assert_nothing_stored_if_rejected, assert_safe
from .world import fuzz, registered, world  # noqa: F401 (fixtures)

MANAGE_SCOPE = "openid keys:manage"


@pytest.fixture(scope="module")
def operations(world):
    """Positive and negative cases for every /v1 operation, from the served document."""
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", world.app)
    return st.one_of(schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
                     schema.as_strategy(generation_mode=GenerationMode.NEGATIVE))


@pytest.fixture(scope="module")
def credentials(fuzz):
    """Authorization headers by name (None: no header at all)."""
    world, c = fuzz.world, fuzz.clients
    manager = world.register(name="App Manager", scope="openid read:users keys:manage")
    basic = lambda who: "Basic " + base64.b64encode(f"{who.client_id}:{who.secret}".encode()).decode()  # noqa: E731
    return {
        "keys:manage token": "Bearer " + world.user_tokens(manager, scope=MANAGE_SCOPE)["access_token"],
        "user token": "Bearer " + world.user_tokens(c.main)["access_token"],
        "client token": "Bearer " + world.machine_token(c.resource),
        "resource client": basic(c.resource),
        "main client": basic(c.main),
        "generated": "generated",
        "none": None,
    }


@given(data=st.data())
@counted
def test_v1_operations(fuzz, operations, credentials, data):
    case = data.draw(operations, label="case")
    who = data.draw(st.sampled_from(sorted(credentials)), label="credentials")
    sent = wsgi_transport.WSGI_TRANSPORT.serialize_case(case)
    headers = sent["headers"]
    if credentials[who] != "generated":
        headers = {name: value for name, value in headers.items() if name.lower() != "authorization"}
        if credentials[who] is not None:
            headers["Authorization"] = credentials[who]
    sent["headers"] = headers
    before = fuzz.rows.snapshot()
    response = fuzz.world.api.open(**sent)
    after = fuzz.rows.snapshot()
    event(f"{case.method} {case.path} {response.status_code}")
    assert_safe(response, fuzz.secrets_not_in(sent))
    assert_nothing_stored_if_rejected(response, before, after)
