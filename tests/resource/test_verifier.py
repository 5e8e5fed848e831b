"""TokenVerifier against the real server's tokens and JWKS: what it accepts, and a table of what
it refuses, each with the exact product error code."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from authserver.resource import InvalidToken, Principal, TokenExpired, TokenVerifier
from authserver.resource.ratelimit import PLANS, PlanLimits, RateLimiter, custom_limits, limits_for

from .live import AUDIENCE, compact, hs256_with_public_key, sign_raw



def now() -> int:
    return int(time.time())


def test_a_user_token_gives_its_principal(server, verifier):
    tokens = server.user_tokens()
    principal = verifier.verify(tokens["access_token"])
    assert isinstance(principal, Principal)
    assert principal.subject == principal.claims["sub"]  # the account's public id
    assert principal.subject not in ("", server.client_id)
    assert principal.client_id == principal.credential_id == server.client_id
    assert principal.scopes == ("openid", "read:users", "write:data")
    assert principal.plan == "pro"
    assert principal.token_id == principal.claims["jti"]
    assert principal.expires_at == principal.claims["exp"]
    assert now() < principal.expires_at <= now() + 3600
    assert principal.claims["email"] == server.email
    assert principal.has_scopes("read:users", "write:data") and not principal.has_scopes("admin")


def test_a_client_credentials_token_names_the_client_as_subject(server, verifier):
    principal = verifier.verify(server.client_token("read:users write:data"))
    assert principal.subject == principal.client_id == server.client_id
    assert principal.scopes == ("read:users", "write:data")
    assert principal.plan is None


@pytest.mark.parametrize("scope, expected", [
    (["read:users", "write:data"], ("read:users", "write:data")),
    ("read:users write:data", ("read:users", "write:data")),
    ("read:users", ("read:users",)),
    (None, ()),  # no scope claim: no scopes
])
def test_scope_as_array_or_space_separated_string(server, verifier, scope, expected):
    assert verifier.verify(server.sign(server.claims(scope=scope))).scopes == expected


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_is_compared_case_insensitively(server, verifier, typ):
    assert verifier.verify(server.sign(typ=typ)).subject == "user_123"


def test_a_token_signed_by_hand_verifies(server, verifier):
    # The control for forgeries made with sign_raw: only what they change makes them fail.
    token = sign_raw(server, {"alg": "RS256", "typ": "at+jwt", "kid": server.active_key().kid}, server.claims())
    assert verifier.verify(token).subject == "user_123"


def test_aud_may_be_a_list_holding_the_audience(server, verifier):
    assert verifier.verify(server.sign(server.claims(aud=["https://other.example", AUDIENCE])))


def test_leeway_tolerates_small_clock_differences(server, verifier):
    t = now()
    token = server.sign(server.claims(exp=t - 10, iat=t + 10, nbf=t + 10))
    assert verifier.verify(token).expires_at == t - 10


def test_expired_token_is_token_expired(server, verifier):
    with pytest.raises(TokenExpired) as caught:
        verifier.verify(server.sign(server.claims(iat=now() - 7200, exp=now() - 3600)))
    assert (caught.value.code, caught.value.status) == ("TOKEN_EXPIRED", 401)
    assert caught.value.message == "The provided authentication token has expired"


def test_expired_and_otherwise_invalid_is_invalid_token(server, verifier):
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(server.sign(server.claims(exp=now() - 3600, aud="https://other.example")))
    assert caught.value.code == "INVALID_TOKEN"


def _other_rsa_key() -> RSAKey:
    return RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


BAD_TOKENS = {
    "alg none": lambda s: compact({"alg": "none", "typ": "at+jwt", "kid": s.active_key().kid}, s.claims()),
    "alg none, no signature part": lambda s: compact({"alg": "none", "typ": "at+jwt"}, s.claims())[:-1],
    "HS256 keyed with the public key": hs256_with_public_key,
    "RS384": lambda s: s.sign(alg="RS384"),
    "PS256": lambda s: s.sign(alg="PS256"),
    "an ID token (typ JWT)": lambda s: s.user_tokens()["id_token"],
    "no typ": lambda s: s.sign(typ=None),
    "typ JWT": lambda s: s.sign(typ="JWT"),
    "no kid": lambda s: s.sign(kid=None),
    "crit header": lambda s: sign_raw(s, {"alg": "RS256", "typ": "at+jwt", "kid": s.active_key().kid,
                                          "crit": ["x-ext"], "x-ext": 1}, s.claims()),
    "wrong iss": lambda s: s.sign(s.claims(iss="http://evil.example")),
    "iss with a trailing slash": lambda s: s.sign(s.claims(iss=s.issuer + "/")),
    "wrong aud": lambda s: s.sign(s.claims(aud="https://other.example")),
    "aud list without ours": lambda s: s.sign(s.claims(aud=["https://a.example", "https://b.example"])),
    "nbf in the future": lambda s: s.sign(s.claims(nbf=now() + 600)),
    "iat in the future": lambda s: s.sign(s.claims(iat=now() + 600)),
    "no sub": lambda s: s.sign(s.claims(sub=None)),
    "no client_id": lambda s: s.sign(s.claims(client_id=None)),
    "no exp": lambda s: s.sign(s.claims(exp=None)),
    "no iat": lambda s: s.sign(s.claims(iat=None)),
    "no jti": lambda s: s.sign(s.claims(jti=None)),
    "no iss": lambda s: s.sign(s.claims(iss=None)),
    "no aud": lambda s: s.sign(s.claims(aud=None)),
    "exp not a number": lambda s: s.sign(s.claims(exp="tomorrow")),
    "client_id not a string": lambda s: s.sign(s.claims(client_id=42)),
    "scope of another type": lambda s: s.sign(s.claims(scope={"read:users": True})),
    "scope array with a non-string": lambda s: s.sign(s.claims(scope=["read:users", 7])),
    "plan not a string": lambda s: s.sign(s.claims(plan=["pro"])),
    "truncated": lambda s: s.client_token()[:-10],
    "signature removed": lambda s: s.client_token().rsplit(".", 1)[0] + ".",
    "tampered payload": lambda s: _tampered(s),
    "garbage": lambda s: "not-a-token",
    "garbage with dots": lambda s: "a.b.c",
    "empty": lambda s: "",
    "not ASCII": lambda s: s.client_token() + "é",
    "100 KB": lambda s: s.sign(s.claims(padding="x" * 100_000)),
    "a kid the JWKS does not have": lambda s: s.sign(kid="no-such-kid"),
    "another RSA key claiming the right kid": lambda s: s.sign(key=_other_rsa_key()),
}


def _tampered(server) -> str:
    header, payload, signature = server.client_token().split(".")
    forged = compact({}, server.claims(sub="admin")).split(".")[1]
    assert forged != payload
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_invalid_token(server, verifier, make_token):
    token = make_token(server)
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert type(caught.value) is InvalidToken
    assert (caught.value.code, caught.value.status) == ("INVALID_TOKEN", 401)
    assert caught.value.message == "The provided authentication token is invalid"


@pytest.mark.parametrize("token", [None, 42, b"a.b.c"])
def test_non_strings_are_invalid_token(verifier, token):
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_oversized_tokens_are_refused_before_any_key_is_fetched(server, verifier):
    with pytest.raises(InvalidToken):
        verifier.verify(server.sign(server.claims(padding="x" * 10_000)))
    assert verifier.keys.fetches == 0


@pytest.mark.parametrize("name", ["alg none", "HS256 keyed with the public key", "RS384", "typ JWT", "no kid"])
def test_bad_headers_are_refused_before_any_key_is_fetched(server, verifier, name):
    token = BAD_TOKENS[name](server)
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    assert verifier.keys.fetches == 0


def test_a_key_cache_for_another_issuer_is_refused(server):
    from authserver.resource import JWKSCache

    with pytest.raises(ValueError):
        TokenVerifier(server.issuer, AUDIENCE, keys=JWKSCache("http://other.example"))


def test_an_unknown_kid_from_a_reachable_issuer_is_invalid_token(server, verifier):
    token = compact({"alg": "RS256", "typ": "at+jwt", "kid": "not-a-published-kid"}, {"iss": server.issuer}, b"sig")
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    assert not verifier.keys.unreachable


# -- rate_limits: an enterprise account's custom limits -------------------------------------------


def test_a_token_without_rate_limits_has_none(server, verifier):
    assert verifier.verify(server.sign()).rate_limits is None


@pytest.mark.parametrize("rate_limits", [
    {"per_hour": 5000, "per_minute": 100},
    {"per_hour": 5000},  # the server writes only the limits that are set
    {"per_minute": 100},
    {"per_hour": 5000, "per_minute": None},  # null: no limit of that kind, as a missing key
    {},
])
def test_rate_limits_are_given_read_only(server, verifier, rate_limits):
    principal = verifier.verify(server.sign(server.claims(plan="enterprise", rate_limits=rate_limits)))
    assert principal.rate_limits == rate_limits
    with pytest.raises(TypeError):
        principal.rate_limits["per_hour"] = 10**9  # type: ignore[index]


@pytest.mark.parametrize("rate_limits", [
    [5000, 100],
    "5000",
    5000,
    None,  # JSON null as the claim's value: not the server's shape (it omits the claim)
    {"per_hour": 0},
    {"per_hour": -1},
    {"per_hour": 1.5},
    {"per_hour": "5000"},
    {"per_hour": True},
    {"per_minute": {"n": 1}},
    {"per_day": 100},
    {"per_hour": 5000, "extra": 1},
], ids=repr)
def test_bad_rate_limits_are_invalid_token(server, verifier, rate_limits):
    token = sign_raw(server, {"alg": "RS256", "typ": "at+jwt", "kid": server.active_key().kid},
                     {**server.claims(plan="enterprise"), "rate_limits": rate_limits})
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert caught.value.code == "INVALID_TOKEN"


def test_expired_with_bad_rate_limits_is_invalid_token(server, verifier):
    """The shape is checked with the other claims, before expiry (TOKEN_EXPIRED: otherwise valid)."""
    claims = server.claims(plan="enterprise", rate_limits={"per_hour": 0}, iat=now() - 7200, exp=now() - 3600)
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(server.sign(claims))
    assert caught.value.code == "INVALID_TOKEN"


def test_a_principals_rate_limits_become_the_limits_for_enterprise_only(server, verifier):
    principal = verifier.verify(server.sign(server.claims(plan="enterprise", rate_limits={"per_minute": 3})))
    custom = custom_limits(principal.rate_limits)
    assert limits_for(principal.plan, custom) == PlanLimits(per_hour=None, per_minute=3)
    assert limits_for("pro", custom) == PLANS["pro"]
    assert limits_for("enterprise", custom_limits(verifier.verify(server.sign()).rate_limits)).unlimited


def test_a_principals_custom_burst_is_enforced(server, verifier):
    principal = verifier.verify(server.sign(server.claims(plan="enterprise", rate_limits={"per_minute": 3})))
    limiter = RateLimiter("memory://")
    try:
        allowed = [limiter.hit(principal.subject, principal.plan, custom_limits(principal.rate_limits)).allowed
                   for _ in range(4)]
    finally:
        limiter.close()
    assert allowed == [True, True, True, False]


# -- verified tokens are remembered ---------------------------------------------------------------


@pytest.fixture
def full_verifications(verifier, monkeypatch):
    """How many times the verifier checked a token's signature and claims (steps 1-5)."""
    calls = []
    real = verifier._verify_fully

    def counting(token):
        calls.append(token)
        return real(token)

    monkeypatch.setattr(verifier, "_verify_fully", counting)
    return calls


def test_a_token_is_verified_fully_once_then_remembered(server, verifier, full_verifications):
    token, other = server.sign(), server.sign()
    assert verifier.verify(token) == verifier.verify(token)
    assert len(full_verifications) == 1
    verifier.verify(other)
    assert len(full_verifications) == 2
    assert all(len(digest) == 32 for digest in verifier._verified)  # digests, never the tokens


def test_a_remembered_token_still_expires(server, verifier, monkeypatch):
    token = server.sign()
    verifier.verify(token)
    later = time.time() + 3600 + 31  # past exp and the leeway
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenExpired):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_its_key_is_no_longer_published(server, verifier, monkeypatch):
    token = server.sign()
    verifier.verify(token)
    monkeypatch.setattr(verifier.keys, "get_key", lambda kid: None)  # withdrawn, or the keys too old to trust
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert type(caught.value) is InvalidToken


def test_refused_tokens_are_not_remembered(server, verifier, full_verifications):
    token = server.sign(server.claims(aud="https://other.example"))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(token)
    assert len(full_verifications) == 2


def test_the_cache_keeps_the_newest_entries_only(server, verifier, full_verifications):
    verifier.cache_entries = 2
    first, second, third = (server.sign() for _ in range(3))
    for token in (first, second, third, third, second, first):
        verifier.verify(token)
    assert full_verifications == [first, second, third, first]
