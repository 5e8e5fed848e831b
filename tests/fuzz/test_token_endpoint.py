"""/oauth/token under hostile input: every grant type, each parameter dropped, changed, repeated
or added, client authentication by Basic header and in the body, every body encoding (and
broken ones), huge and empty values. The properties: tests/fuzz/properties.py."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from .examples import counted
from .inputs import authorization_header, authorizations_or, bodies, mutated, resolved
from .properties import assert_nothing_stored_if_rejected, assert_safe
from .world import Real, fuzz, registered, world  # noqa: F401 (fixtures)

GRANTS = {
    "authorization_code": [("grant_type", "authorization_code"), ("code", Real("code")),
                           ("redirect_uri", Real("redirect_uri")), ("code_verifier", Real("code_verifier"))],
    "refresh_token": [("grant_type", "refresh_token"), ("refresh_token", Real("refresh_token"))],
    "client_credentials": [("grant_type", "client_credentials"), ("scope", "read:users")],
    "password": [("grant_type", "password"), ("username", "ada@example.com"), ("password", Real("password"))],
}
MAIN_BASIC = ("basic", Real("main_id"), Real("main_secret"))
IN_BODY = {"none": [], "secret": [("client_id", Real("main_id")), ("client_secret", Real("main_secret"))],
           "client_id": [("client_id", Real("main_id"))]}


@st.composite
def token_requests(draw):
    grant = draw(st.sampled_from(sorted(GRANTS)))
    pairs = draw(mutated(GRANTS[grant] + IN_BODY[draw(st.sampled_from(["none"] * 4 + sorted(IN_BODY)))]))
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT"]))
    return method, pairs, draw(authorizations_or(MAIN_BASIC)), draw(st.data())


@given(request=token_requests())
@counted
def test_token_endpoint(fuzz, request):
    method, pairs, authorization, data = request
    fuzz.start_example()
    pairs = resolved(fuzz, pairs)
    sent = data.draw(bodies(pairs), label="body")
    headers = authorization_header(fuzz, authorization)
    before = fuzz.rows.snapshot()
    response = fuzz.world.api.open("/oauth/token", method=method, headers=headers, **sent)
    after = fuzz.rows.snapshot()
    event(f"status {response.status_code}")
    assert_safe(response, fuzz.secrets_not_in(pairs, headers))
    assert_nothing_stored_if_rejected(response, before, after)
