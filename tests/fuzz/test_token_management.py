"""/oauth/revoke, /oauth/introspect and /oauth/userinfo under hostile input: real tokens of the
sender and of others, garbage, every body encoding, every Authorization header shape. Besides the
properties of tests/fuzz/properties.py: revocation by a client that does not own the token
changes nothing (RFC 7009 §2.1), and introspection never stores anything."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from .examples import counted
from .inputs import authorization_header, authorizations, authorizations_or, bodies, mutated, resolved
from .properties import assert_nothing_stored_if_rejected, assert_safe
from .world import Real, fuzz, registered, world  # noqa: F401 (fixtures)

TOKENS = [Real("access_token"), Real("refresh_token"), Real("id_token"), Real("machine_token"), Real("code")]
SENDERS = {  # who sends: its Basic credentials
    "main": ("basic", Real("main_id"), Real("main_secret")),
    "other": ("basic", Real("other_id"), Real("other_secret")),
    "resource": ("basic", Real("resource_id"), Real("resource_secret")),
}
OWNERS = {Real("machine_token"): "resource"}  # the main client owns every other real token


@st.composite
def management_requests(draw):
    token = draw(st.sampled_from(TOKENS))
    base = [("token", token)] + draw(st.sampled_from([[], [("token_type_hint", "access_token")],
                                                      [("token_type_hint", "refresh_token")]]))
    sender = draw(st.sampled_from(sorted(SENDERS)))
    authorization = draw(authorizations_or(SENDERS[sender]))
    pairs = draw(mutated(base))
    # Whether the sender may own a token sent (mutations may have put another real one in).
    owns = authorization == SENDERS[sender] and any(
        isinstance(value, Real) and OWNERS.get(value, "main") == sender for _, value in pairs)
    return pairs, owns, authorization, draw(st.data())


def _send(fuzz, path, pairs, authorization, data):
    fuzz.start_example()
    pairs = resolved(fuzz, pairs)
    sent = data.draw(bodies(pairs), label="body")
    headers = authorization_header(fuzz, authorization)
    before = fuzz.rows.snapshot()
    response = fuzz.world.api.open(path, method="POST", headers=headers, **sent)
    after = fuzz.rows.snapshot()
    event(f"status {response.status_code}")
    assert_safe(response, fuzz.secrets_not_in(pairs, headers))
    assert_nothing_stored_if_rejected(response, before, after)
    return before, after


@given(request=management_requests())
@counted
def test_revoke(fuzz, request):
    pairs, sent_by_owner, authorization, data = request
    before, after = _send(fuzz, "/oauth/revoke", pairs, authorization, data)
    if not sent_by_owner:
        assert after == before, "revoked by a caller that does not own the token"


@given(request=management_requests())
@counted
def test_introspect(fuzz, request):
    pairs, _, authorization, data = request
    before, after = _send(fuzz, "/oauth/introspect", pairs, authorization, data)
    assert after == before


@given(authorization=authorizations(), method=st.sampled_from(["GET", "GET", "POST"]),
       extra=st.sampled_from([{}, {"access_token": Real("access_token")}, {"access_token": "x"},
                              {"access_token": Real("main_secret")}]),
       in_query=st.booleans())
@counted
def test_userinfo(fuzz, authorization, method, extra, in_query):
    fuzz.start_example()
    headers = authorization_header(fuzz, authorization)
    params = fuzz.resolve(extra)
    sent = {"query_string": params} if in_query or method == "GET" else {"data": params}
    before = fuzz.rows.snapshot()
    response = fuzz.world.api.open("/oauth/userinfo", method=method, headers=headers, **sent)
    after = fuzz.rows.snapshot()
    event(f"status {response.status_code}")
    assert_safe(response, fuzz.secrets_not_in(params, headers))
    assert after == before
