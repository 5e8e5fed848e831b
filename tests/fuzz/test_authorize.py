"""/oauth/authorize under hostile query strings (and form posts), signed in and not: every
parameter dropped, changed, repeated or added, redirect_uri, response_type, PKCE, scope, prompt,
max_age, with GET and the consent form's POST. The properties: tests/fuzz/properties.py; a
redirect that carries `error` counts as a rejection."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import event, given
from hypothesis import strategies as st

from .examples import counted
from .inputs import mutated, resolved
from .properties import assert_nothing_stored_if_rejected, assert_safe
from .world import Real, fuzz, registered, world  # noqa: F401 (fixtures)

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B
VALID = [("client_id", Real("main_id")), ("redirect_uri", Real("redirect_uri")), ("response_type", "code"),
         ("scope", "openid read:users"), ("state", "xyz"), ("code_challenge", CHALLENGE),
         ("code_challenge_method", "S256")]
OPTIONAL = [("nonce", "n-0S6_WzA2Mj"), ("prompt", "none"), ("prompt", "consent"), ("prompt", "login"),
            ("max_age", "0"), ("login_hint", "ada@example.com"), ("response_mode", "query")]


@st.composite
def authorize_requests(draw):
    base = VALID + draw(st.lists(st.sampled_from(OPTIONAL), max_size=2, unique=True))
    pairs = draw(mutated(base))
    method = draw(st.sampled_from(["GET"] * 4 + ["POST"]))
    decision = draw(st.sampled_from([None, "allow", "deny", "maybe", ""]))
    return draw(st.booleans()), method, pairs, decision


@given(request=authorize_requests())
@counted
def test_authorize(fuzz, request):
    signed_in, method, pairs, decision = request
    fuzz.start_example()
    pairs = resolved(fuzz, pairs)
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    browser = fuzz.world.browser if signed_in else fuzz.world.app.test_client()
    # The consent form without its CSRF token: must be refused, whatever the decision says.
    form = {"decision": decision} if decision is not None else {}
    before = fuzz.rows.snapshot()
    response = browser.open(f"/oauth/authorize?{query}", method=method, data=form if method == "POST" else None)
    after = fuzz.rows.snapshot()
    event(f"{'signed in' if signed_in else 'anonymous'} {method} {response.status_code}")
    assert_safe(response, fuzz.secrets_not_in(pairs))
    assert_nothing_stored_if_rejected(response, before, after)
    if method == "POST":
        assert after == before, "a consent POST without its CSRF token stored something"
