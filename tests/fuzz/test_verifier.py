"""The resource verifier (authserver/resource/verifier.py) under hostile tokens: arbitrary strings
and bytes, three-part garbage, and structurally valid tokens of the real server with their header
or claims changed, then kept with the old signature, re-signed with the real key, unsigned
(`alg: none`), HMAC'd with the public key (HS256 confusion) or signed by a key never published,
under kid tricks. Every refusal is the verifier's own InvalidToken, never another exception;
and whatever it accepts is a token the server's key really signed, for our issuer and audience,
not expired."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import event, given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey

from authserver.resource import InvalidToken, JWKSCache, Principal, TokenVerifier

from ..resource.live import AUDIENCE, LiveAuthServer
from .examples import counted
from .inputs import json_values

LEEWAY = 30
CLAIM_NAMES = ["iss", "aud", "sub", "client_id", "jti", "iat", "nbf", "exp", "scope", "plan", "rate_limits"]
HEADER_VALUES = {
    "alg": ["none", "None", "HS256", "RS384", "PS256", "ES256", "EdDSA", "", "rs256", None, 1],
    "typ": ["at+jwt", "JWT", "application/at+jwt", "at+JWT", "", None, ["at+jwt"]],
    "kid": ["unknown", "", "../../keys/active", "' OR 1=1 --", "k" * 5000, None, 7, ["x"], {"k": 1}],
    "crit": [["exp"], [], "b64"],
    "jku": ["https://evil.example/jwks.json"],
    "jwk": [{"kty": "oct", "k": "AAAA"}],
    "x5u": ["https://evil.example/cert.pem"],
    "b64": [False],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url):
    live = LiveAuthServer.start(tmp_path_factory.mktemp("verifier-fuzz"), database_url)
    yield live
    live.close()


@pytest.fixture(scope="module")
def verifier(server):
    # A long refetch cooldown: made-up kids must not make the verifier hammer the server anyway.
    return TokenVerifier(server.issuer, AUDIENCE, leeway=LEEWAY,
                         keys=JWKSCache(server.issuer, refresh_cooldown=3600))


@pytest.fixture(scope="module")
def foreign_key():
    return RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value) -> str:
    return b64(json.dumps(value).encode())


def verdict(verifier: TokenVerifier, token) -> Principal | None:
    """The principal, or None when refused with InvalidToken; any other exception fails the test."""
    try:
        return verifier.verify(token)
    except InvalidToken:
        return None


@given(token=st.one_of(st.text(max_size=200), st.binary(max_size=200), st.none(), st.integers(),
                       st.lists(st.text(max_size=5), max_size=3),
                       st.tuples(st.text(max_size=60), st.text(max_size=60), st.text(max_size=60)).map(".".join),
                       st.tuples(st.binary(max_size=60), st.binary(max_size=60), st.binary(max_size=60))
                       .map(lambda parts: ".".join(b64(p) for p in parts))))
@counted
def test_garbage_is_refused_with_invalid_token(verifier, token):
    assert verdict(verifier, token) is None


@st.composite
def tamperings(draw):
    header_changes = draw(st.dictionaries(st.sampled_from(sorted(HEADER_VALUES)), st.none(), max_size=3))
    header_changes = {name: draw(st.sampled_from(HEADER_VALUES[name])) for name in header_changes}
    claim_changes = draw(st.dictionaries(st.sampled_from(CLAIM_NAMES) | st.text(max_size=8),
                                         st.one_of(json_values, st.just("REMOVE"),
                                                   st.integers(-10**12, 10**12)), max_size=3))
    signing = draw(st.sampled_from(["keep", "real key", "real key", "none", "hs256 public key", "foreign key"]))
    return header_changes, claim_changes, signing


def forge(server: LiveAuthServer, foreign_key, header_changes: dict, claim_changes: dict, signing: str):
    """A genuine token's header and claims with the changes (None / "REMOVE" drops one), signed as told.
    Returns (token, whether it is the genuine token unchanged)."""
    active = server.active_key()
    header = {"alg": "RS256", "typ": "at+jwt", "kid": active.kid}
    claims = server.claims()
    original = f"{segment(header)}.{segment(claims)}"
    original_signature = b64(active.key.raw_value.sign(original.encode(), *_pkcs1()))
    header = {k: v for k, v in {**header, **header_changes}.items() if v is not None}
    claims = {k: v for k, v in {**claims, **claim_changes}.items() if v != "REMOVE"}
    signing_input = f"{segment(header)}.{segment(claims)}"
    if signing == "keep":
        return f"{signing_input}.{original_signature}", signing_input == original
    if signing == "real key":
        return f"{signing_input}.{b64(active.key.raw_value.sign(signing_input.encode(), *_pkcs1()))}", False
    if signing == "none":
        return f"{signing_input}.", False
    if signing == "hs256 public key":
        mac = hmac.new(active.key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}", False
    return f"{signing_input}.{b64(foreign_key.raw_value.sign(signing_input.encode(), *_pkcs1()))}", False


def _pkcs1():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    return padding.PKCS1v15(), hashes.SHA256()


@given(tampering=tamperings())
@counted
def test_tampered_tokens_are_refused_unless_really_valid(server, verifier, foreign_key, tampering):
    header_changes, claim_changes, signing = tampering
    token, genuine = forge(server, foreign_key, header_changes, claim_changes, signing)
    principal = verdict(verifier, token)
    event(f"{signing}: {'accepted' if principal else 'refused'}")
    if principal is None:
        return
    # Accepted: only the genuine token, or one the real key signed whose header and claims are
    # still everything the verifier demands.
    assert genuine or signing == "real key", (signing, header_changes, claim_changes)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["kid"] == server.active_key().kid
    assert header["typ"].lower() in ("at+jwt", "application/at+jwt") and "crit" not in header
    claims = jwt.decode(token, server.active_key().key, algorithms=["RS256"]).claims
    assert claims["iss"] == server.issuer
    assert claims["aud"] == AUDIENCE or (isinstance(claims["aud"], list) and AUDIENCE in claims["aud"])
    assert isinstance(claims["exp"], (int, float)) and claims["exp"] > time.time() - LEEWAY
    assert all(name in claims for name in ("sub", "client_id", "jti", "iat"))
    assert dict(principal.claims) == claims
