"""The signing key store and the token signer: states, file modes, RFC 7638 kids, the published
JWKS, damaged stores, and tokens a third-party JWT library verifies with the published key."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authserver.oauth.keys import KeyStore, KeyStoreError
from authserver.oauth.signing import TokenSigner

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rfc7638_thumbprint(jwk: dict) -> str:
    """RFC 7638 §3: the required members of an RSA key (e, kty, n), in lexicographic order,
    no whitespace, UTF-8, SHA-256, base64url without padding."""
    canonical = json.dumps({"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


@pytest.fixture(scope="module")
def generated_store(tmp_path_factory) -> KeyStore:
    store = KeyStore(tmp_path_factory.mktemp("generated") / "keys")
    store.ensure_active()
    return store


@pytest.fixture
def store_with_key(generated_store, tmp_path) -> KeyStore:
    """A private copy of a store holding one active key (RSA generation is slow; copying is not)."""
    directory = shutil.copytree(generated_store.directory, tmp_path / "keys")
    return KeyStore(directory)


def manifest(store: KeyStore) -> list[dict]:
    return json.loads((store.directory / "keyset.json").read_text())["keys"]


# -- generating ----------------------------------------------------------------

def test_generate_makes_the_first_key_active_then_the_next_one_next(store):
    first = store.generate()
    second = store.generate()
    assert (first.state, second.state) == ("active", "next")
    assert [(e["kid"], e["state"]) for e in manifest(store)] == [(first.kid, "active"), (second.kid, "next")]
    assert [(k.kid, k.state) for k in store.load()] == [(first.kid, "active"), (second.kid, "next")]
    assert store.active_key().kid == first.kid
    assert abs(first.created_at - time.time()) < 60


def test_private_key_files_are_mode_0600_in_a_0700_directory(store):
    key = store.generate()
    assert mode(store.directory) == 0o700
    assert mode(store.directory / f"{key.kid}.pem") == 0o600


def test_kid_is_the_rfc7638_thumbprint_of_the_public_key(store):
    key = store.generate()
    jwk = key.public_jwk()
    assert key.kid == rfc7638_thumbprint(jwk)
    # ... and that JWK is the key on disk, not just self-consistent.
    pem = (store.directory / f"{key.kid}.pem").read_bytes()
    numbers = serialization.load_pem_private_key(pem, password=None).public_key().public_numbers()
    assert jwk["n"] == b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
    assert jwk["e"] == b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")) == "AQAB"
    assert numbers.n.bit_length() == 2048


def test_ensure_active_is_idempotent(store):
    first = store.ensure_active()
    second = store.ensure_active()
    assert second.kid == first.kid
    assert [(e["kid"], e["state"]) for e in manifest(store)] == [(first.kid, "active")]
    assert sorted(p.name for p in store.directory.glob("*.pem")) == [f"{first.kid}.pem"]


def test_ensure_active_keeps_an_existing_active_key_and_its_next_key(store):
    active = store.generate()
    upcoming = store.generate()
    assert store.ensure_active().kid == active.kid
    assert [(e["kid"], e["state"]) for e in manifest(store)] == [(active.kid, "active"), (upcoming.kid, "next")]


# -- damaged stores ------------------------------------------------------------

def test_a_corrupted_pem_is_a_clear_error(store_with_key):
    key = store_with_key.active_key()
    path = store_with_key.directory / f"{key.kid}.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyStoreError) as caught:
        store_with_key.load()
    assert str(caught.value).startswith(f"signing key {key.kid} cannot be read from {path}: ")


def test_a_missing_pem_is_a_clear_error(store_with_key):
    key = store_with_key.active_key()
    path = store_with_key.directory / f"{key.kid}.pem"
    path.unlink()
    with pytest.raises(KeyStoreError) as caught:
        store_with_key.ensure_active()
    assert str(caught.value).startswith(f"signing key {key.kid} cannot be read from {path}: ")


def test_a_key_shorter_than_2048_bits_is_refused(store_with_key):
    key = store_with_key.active_key()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (store_with_key.directory / f"{key.kid}.pem").write_bytes(small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyStoreError) as caught:
        store_with_key.load()
    assert str(caught.value) == f"signing key {key.kid} is not an RSA key of 2048 bits or more"


CORRUPT_MANIFESTS = [
    pytest.param("{not json", id="not-json"),
    pytest.param("", id="empty-file"),
    pytest.param('{"kids": []}', id="no-keys-member"),
    pytest.param('{"keys": [{"kid": "KID", "state": "retiring", "created_at": 1}]}', id="unknown-state"),
    pytest.param('{"keys": [{"kid": 7, "state": "active", "created_at": 1}]}', id="kid-not-a-string"),
    pytest.param('{"keys": [{"state": "active", "created_at": 1}]}', id="kid-missing"),
    pytest.param('{"keys": [{"kid": "KID", "state": "active"}]}', id="created-at-missing"),
    pytest.param('{"keys": [{"kid": "KID", "state": "active", "created_at": "yesterday"}]}', id="created-at-not-a-number"),
    pytest.param('{"keys": [{"kid": "KID", "state": "retired", "created_at": 1, "retired_at": "today"}]}',
                 id="retired-at-not-a-number"),
    pytest.param('{"keys": [{"kid": "KID", "state": "retired", "created_at": 1, "retired_at": null}]}',
                 id="retired-at-null"),
    pytest.param('{"keys": ["KID"]}', id="entry-not-an-object"),
    pytest.param('["KID"]', id="not-an-object"),
]


@pytest.mark.parametrize("text", CORRUPT_MANIFESTS)
def test_a_corrupted_manifest_is_a_clear_error(store_with_key, text):
    key = store_with_key.active_key()
    path = store_with_key.directory / "keyset.json"
    path.write_text(text.replace("KID", key.kid))
    rotate = lambda: store_with_key.rotate(retired_lifetime=3600, force=True)  # noqa: E731
    for action in (store_with_key.load, store_with_key.ensure_active, store_with_key.generate, rotate):
        with pytest.raises(KeyStoreError) as caught:
            action()
        assert str(caught.value).startswith(f"the key manifest {path} is not valid: ")


def test_a_manifest_without_an_active_key_is_a_clear_error(store_with_key):
    key = store_with_key.active_key()
    path = store_with_key.directory / "keyset.json"
    path.write_text(json.dumps({"keys": [{"kid": key.kid, "state": "retired", "created_at": key.created_at}]}))
    with pytest.raises(KeyStoreError) as caught:
        store_with_key.active_key()
    assert str(caught.value) == f"the key store at {store_with_key.directory} has no active signing key"


def test_the_manifest_version_names_each_write_and_comes_with_the_keys_read(store):
    assert store.version() is None
    assert store.read().keys == () and store.read().version is None
    store.generate()
    first = store.read()
    assert first.version == store.version()
    store.generate()
    second = store.read()
    assert second.version == store.version() != first.version
    assert [k.kid for k in second.keys][:1] == [k.kid for k in first.keys]


def test_retired_at_is_read_from_the_manifest(store_with_key):
    key = store_with_key.active_key()
    path = store_with_key.directory / "keyset.json"
    path.write_text(json.dumps({"keys": [
        {"kid": key.kid, "state": "retired", "created_at": key.created_at, "retired_at": key.created_at + 7}]}))
    (loaded,) = store_with_key.load()
    assert (loaded.state, loaded.retired_at) == ("retired", key.created_at + 7)
    assert key.retired_at is None


# -- signer and JWKS -------------------------------------------------------------

def test_jwks_publishes_every_key_without_private_members(store):
    active = store.generate()
    upcoming = store.generate()
    jwks = TokenSigner(store).jwks()
    assert [key["kid"] for key in jwks["keys"]] == [active.kid, upcoming.kid]
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(key)
        assert set(key) == {"kty", "n", "e", "kid", "use", "alg"}
        assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
        assert key["kid"] == rfc7638_thumbprint(key)


def test_a_signed_token_names_the_active_key_and_verifies_with_the_published_key(store):
    active = store.generate()
    store.generate()  # a next key is published too, but must not sign
    signer = TokenSigner(store)
    now = int(time.time())
    claims = {"iss": "https://auth.example.com", "aud": "https://api.example.com", "sub": "user_1",
              "iat": now, "exp": now + 60, "scope": ["read:users"]}

    token = signer.sign(claims, "at+jwt")

    assert pyjwt.get_unverified_header(token) == {"alg": "RS256", "typ": "at+jwt", "kid": active.kid}
    assert signer.kid == active.kid
    published = {key["kid"]: key for key in signer.jwks()["keys"]}
    public_key = pyjwt.PyJWK(published[active.kid]).key
    decoded = pyjwt.decode(token, public_key, algorithms=["RS256"], audience="https://api.example.com",
                           issuer="https://auth.example.com")
    assert decoded == claims


def test_a_token_does_not_verify_with_another_published_key(store):
    store.generate()
    upcoming = store.generate()
    signer = TokenSigner(store)
    token = signer.sign({"sub": "user_1"}, "at+jwt")
    published = {key["kid"]: key for key in signer.jwks()["keys"]}
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, pyjwt.PyJWK(published[upcoming.kid]).key, algorithms=["RS256"])
