"""Signing-key rotation: the key store's state transitions (next → active → retired → removed),
the safety rule against promoting a key verifiers may not have fetched yet, the signer following
a rotation made elsewhere without a restart (and surviving a damaged store), automatic rotation
by age with exactly one of many workers acting, and the `keys rotate` command.

Time is injected (`now=`, `clock=`, `wall_clock=`) instead of slept through."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import jwt as pyjwt
import pytest
from joserfc import jwt as josejwt

from authserver.oauth.keys import KeyStore, KeyStoreError, RotationRefused
from authserver.oauth.signing import CLOCK_SKEW_MARGIN, JWKS_MAX_AGE, RotationPolicy, TokenSigner
from authserver.settings import load_settings

AUTHSERVER = Path(sys.executable).parent / "authserver"
LIFETIME = 3600 + 5 + 60  # a retired key's lifetime with the default settings
MIN_AGE = JWKS_MAX_AGE + 5  # a next key's minimum age with the default settings
SIGNER_LOG = "authserver.oauth.signing"


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store with an active and a next key (RSA generation is slow; copying is not)."""
    store = KeyStore(tmp_path_factory.mktemp("template") / "keys")
    store.generate()
    store.generate()
    return store.directory


@pytest.fixture
def store(template, tmp_path) -> KeyStore:
    return KeyStore(shutil.copytree(template, tmp_path / "keys"))


def other(store: KeyStore) -> KeyStore:
    """Another process's view of the same store (say, `authserver keys rotate`)."""
    return KeyStore(store.directory)


def manifest(store: KeyStore) -> list[dict]:
    return json.loads(store.manifest_path.read_text())["keys"]


def states(store: KeyStore) -> list[tuple[str, str]]:
    return [(e["kid"], e["state"]) for e in manifest(store)]


def pem_files(store: KeyStore) -> set[str]:
    return {p.stem for p in store.directory.glob("*.pem")}


def kid_of(token: str) -> str:
    return pyjwt.get_unverified_header(token)["kid"]


def verify_with(signer: TokenSigner, token: str) -> dict:
    """How bearer.py verifies: the key named by the token's kid, looked up in the signer."""
    return josejwt.decode(token, lambda obj: signer.public_key(obj.headers()["kid"]), algorithms=["RS256"]).claims


def verify_with_jwks(jwks: dict, token: str) -> dict:
    """How a resource service verifies: PyJWT, the published key with the token's kid."""
    published = {key["kid"]: key for key in jwks["keys"]}
    return pyjwt.decode(token, pyjwt.PyJWK(published[kid_of(token)]).key, algorithms=["RS256"])


def claims(n: int = 1) -> dict:
    return {"sub": f"user_{n}", "exp": int(time.time()) + 3600}


# -- the key store: state transitions ------------------------------------------------------

def test_rotations_move_keys_through_next_active_retired_and_then_remove_them(store):
    k1, k2 = [e["kid"] for e in manifest(store)]
    t0 = manifest(store)[1]["created_at"] + MIN_AGE

    keys = store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=t0)
    k3 = keys[-1].kid
    assert [(k.kid, k.state, k.retired_at) for k in keys] == [
        (k1, "retired", t0), (k2, "active", None), (k3, "next", None)]
    assert keys[-1].created_at == t0
    assert states(other(store)) == [(k1, "retired"), (k2, "active"), (k3, "next")]
    assert manifest(store)[0]["retired_at"] == t0
    assert "retired_at" not in manifest(store)[1]

    t1 = t0 + MIN_AGE
    keys = store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=t1)
    k4 = keys[-1].kid
    assert [(k.kid, k.state, k.retired_at) for k in keys] == [
        (k1, "retired", t0), (k2, "retired", t1), (k3, "active", None), (k4, "next", None)]
    assert len({k1, k2, k3, k4}) == 4
    assert pem_files(store) == {k1, k2, k3, k4}

    # k1 retired LIFETIME ago: every token it signed has expired, so it goes, PEM and all;
    # k2 retired less than LIFETIME ago and stays published.
    t2 = t0 + LIFETIME
    assert t2 - t1 < LIFETIME
    keys = store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=t2)
    k5 = keys[-1].kid
    assert [(k.kid, k.state) for k in keys] == [(k2, "retired"), (k3, "retired"), (k4, "active"), (k5, "next")]
    assert pem_files(store) == {k2, k3, k4, k5}


def test_a_retired_key_is_kept_until_the_very_second_its_lifetime_has_passed(store):
    k1 = manifest(store)[0]["kid"]
    t0 = manifest(store)[1]["created_at"] + MIN_AGE
    store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=t0)
    # The next rotation one second early keeps k1 ...
    store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=t0 + LIFETIME - 1)
    assert (k1, "retired") in states(store)
    # ... and the one after, at the lifetime exactly, removes it.
    store.rotate(retired_lifetime=LIFETIME, force=True, now=t0 + LIFETIME)
    assert k1 not in {kid for kid, _ in states(store)}
    assert k1 not in pem_files(store)


def test_the_manifest_is_replaced_whole_never_rewritten_in_place(store):
    before = os.stat(store.manifest_path).st_ino
    store.rotate(retired_lifetime=LIFETIME, force=True)
    assert os.stat(store.manifest_path).st_ino != before
    assert sorted(p.name for p in store.directory.iterdir() if not p.name.endswith(".pem")) == [".lock", "keyset.json"]


# -- the safety rule --------------------------------------------------------------------

def test_rotation_is_refused_while_the_next_key_is_younger_than_the_jwks_cache_and_reload_time(store):
    upcoming = manifest(store)[1]
    before_manifest, before_pems = store.manifest_path.read_bytes(), pem_files(store)

    with pytest.raises(RotationRefused) as caught:
        store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=upcoming["created_at"] + MIN_AGE - 1)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"refusing to rotate: the next key {upcoming['kid']} was published {MIN_AGE - 1} s ago")
    assert message.endswith("rotate again in 1 s, or force it (keys rotate --force)")
    assert store.manifest_path.read_bytes() == before_manifest  # nothing changed
    assert pem_files(store) == before_pems


def test_force_rotates_a_next_key_published_just_now(store):
    k1, k2 = [e["kid"] for e in manifest(store)]
    keys = store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, force=True,
                        now=manifest(store)[1]["created_at"])
    assert [(k.kid, k.state) for k in keys][:2] == [(k1, "retired"), (k2, "active")]


def test_a_store_without_a_next_key_is_refused_unless_forced_which_generates_and_promotes_one(store_with_one_key):
    store = store_with_one_key
    (k1,) = [e["kid"] for e in manifest(store)]
    before = store.manifest_path.read_bytes()

    with pytest.raises(RotationRefused) as caught:
        store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE)
    assert "has no next key" in str(caught.value) and "keys generate" in str(caught.value)
    assert store.manifest_path.read_bytes() == before
    assert pem_files(store) == {k1}

    keys = store.rotate(retired_lifetime=LIFETIME, min_next_age=MIN_AGE, force=True)
    assert [k.state for k in keys] == ["retired", "active", "next"]
    assert keys[0].kid == k1
    assert len({k.kid for k in keys}) == 3


@pytest.fixture
def store_with_one_key(template, tmp_path) -> KeyStore:
    store = KeyStore(shutil.copytree(template, tmp_path / "keys"))
    entries = manifest(store)
    (store.directory / f"{entries[1]['kid']}.pem").unlink()
    store.manifest_path.write_text(json.dumps({"keys": entries[:1]}))
    return store


def test_a_store_without_an_active_key_cannot_be_rotated(tmp_path):
    with pytest.raises(KeyStoreError, match="has no active signing key to rotate"):
        KeyStore(tmp_path / "keys").rotate(retired_lifetime=LIFETIME, force=True)


# -- manifests written before rotation existed ------------------------------------------------

def test_a_manifest_from_before_rotation_loads_and_its_retired_keys_get_a_full_lifetime(store):
    # The code before rotation wrote no retired_at; a retired key could only come from an edit.
    k1, k2 = [e["kid"] for e in manifest(store)]
    store.manifest_path.write_text(json.dumps({"keys": [
        {"kid": k1, "state": "retired", "created_at": manifest(store)[0]["created_at"]},
        {"kid": k2, "state": "active", "created_at": manifest(store)[1]["created_at"]},
    ]}))
    assert [(k.kid, k.state, k.retired_at) for k in store.load()] == [(k1, "retired", None), (k2, "active", None)]

    now = int(time.time()) + 10 * LIFETIME
    keys = store.rotate(retired_lifetime=LIFETIME, force=True, now=now)
    # Kept (not judged expired for lack of a date) and stamped now: it stays a full lifetime.
    assert [(k.kid, k.state, k.retired_at) for k in keys][:2] == [(k1, "retired", now), (k2, "retired", now)]


# -- the signer follows the store --------------------------------------------------------------

def test_the_signer_picks_up_a_rotation_made_elsewhere_after_the_reload_interval(store):
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    k1, k2 = [e["kid"] for e in manifest(store)]
    old_token = signer.sign(claims(), "at+jwt")
    assert kid_of(old_token) == signer.kid == k1

    keys = other(store).rotate(retired_lifetime=LIFETIME, force=True)
    k3 = keys[-1].kid

    clock.advance(4.9)  # within the interval: the keys in memory, no file looked at
    assert kid_of(signer.sign(claims(), "at+jwt")) == k1
    assert [k["kid"] for k in signer.jwks()["keys"]] == [k1, k2]

    clock.advance(0.1)
    new_token = signer.sign(claims(2), "at+jwt")
    assert kid_of(new_token) == signer.kid == k2
    assert [k["kid"] for k in signer.jwks()["keys"]] == [k1, k2, k3]
    # Tokens signed before the rotation still verify, by their kid, as do the new ones.
    assert verify_with(signer, old_token)["sub"] == "user_1"
    assert verify_with_jwks(signer.jwks(), old_token)["sub"] == "user_1"
    assert verify_with(signer, new_token)["sub"] == "user_2"
    assert verify_with_jwks(signer.jwks(), new_token)["sub"] == "user_2"


def test_the_served_jwks_bytes_follow_a_rotation_after_the_reload_interval(store):
    """/.well-known/jwks.json serves `jwks_json()`: serialised once per key ring, never stale past it."""
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    before = signer.jwks_json()
    assert json.loads(before) == signer.jwks()

    other(store).rotate(retired_lifetime=LIFETIME, force=True)
    clock.advance(4.9)
    assert signer.jwks_json() is before  # the same bytes, not serialised again

    clock.advance(0.1)
    after = signer.jwks_json()
    assert after != before
    assert json.loads(after) == signer.jwks()
    assert [k["kid"] for k in json.loads(after)["keys"]] == [e["kid"] for e in manifest(store)]
    assert signer.jwks_json() is after


def test_tokens_keep_verifying_through_two_rotations_and_fail_once_their_key_is_removed(store):
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    k1 = signer.kid
    first = signer.sign(claims(1), "at+jwt")
    t0 = int(time.time())
    rotator = other(store)

    rotator.rotate(retired_lifetime=LIFETIME, force=True, now=t0)
    clock.advance(5)
    second = signer.sign(claims(2), "at+jwt")
    rotator.rotate(retired_lifetime=LIFETIME, force=True, now=t0 + 1)
    clock.advance(5)
    third = signer.sign(claims(3), "at+jwt")

    assert len({kid_of(first), kid_of(second), kid_of(third)}) == 3
    assert kid_of(third) == signer.kid
    for n, token in enumerate((first, second, third), start=1):
        assert verify_with(signer, token)["sub"] == f"user_{n}"
        assert verify_with_jwks(signer.jwks(), token)["sub"] == f"user_{n}"

    # Once k1's lifetime has passed, the next rotation removes it: its tokens have expired anyway.
    rotator.rotate(retired_lifetime=LIFETIME, force=True, now=t0 + LIFETIME)
    clock.advance(5)
    with pytest.raises(KeyError):
        signer.public_key(k1)
    assert k1 not in [k["kid"] for k in signer.jwks()["keys"]]
    assert verify_with(signer, second)["sub"] == "user_2"


def test_keys_are_not_read_per_request_and_only_statted_once_per_interval(store, monkeypatch):
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    calls = {"version": 0, "read": 0}
    for name in calls:
        original = getattr(store, name)

        def counting(original=original, name=name):
            calls[name] += 1
            return original()

        monkeypatch.setattr(store, name, counting)

    for _ in range(200):
        signer.sign(claims(), "at+jwt"), signer.jwks(), signer.public_key(signer.kid)
    assert calls == {"version": 0, "read": 0}

    clock.advance(5)
    for _ in range(200):
        signer.sign(claims(), "at+jwt"), signer.jwks()
    assert calls == {"version": 1, "read": 0}  # unchanged: one stat, nothing read

    other(store).rotate(retired_lifetime=LIFETIME, force=True)
    clock.advance(5)
    for _ in range(200):
        signer.sign(claims(), "at+jwt"), signer.jwks()
    assert calls == {"version": 2, "read": 1}


def test_the_signer_follows_a_rotation_in_real_time_within_the_reload_interval(store):
    signer = TokenSigner(store, reload_interval=0.2)
    k2 = manifest(store)[1]["kid"]
    other(store).rotate(retired_lifetime=LIFETIME, force=True)
    rotated_at = time.monotonic()
    while signer.kid != k2:
        assert time.monotonic() - rotated_at < 0.2 + 3.0, "the signer did not follow the rotation"
        time.sleep(0.01)


def test_an_unknown_kid_is_a_key_error(store):
    signer = TokenSigner(store)
    for kid in ("nope", None, ""):
        with pytest.raises(KeyError):
            signer.public_key(kid)


# -- a reload that fails keeps the keys in memory ---------------------------------------------

def test_a_corrupt_manifest_keeps_the_loaded_keys_and_logs_one_line(store, caplog):
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    k1 = signer.kid
    jwks, jwks_json = signer.jwks(), signer.jwks_json()
    good = store.manifest_path.read_bytes()

    store.manifest_path.write_text("{not json")
    caplog.set_level(logging.INFO, logger=SIGNER_LOG)
    for _ in range(3):  # three intervals: the problem is logged once, not every time
        clock.advance(5)
        token = signer.sign(claims(), "at+jwt")
        assert kid_of(token) == k1
        assert verify_with_jwks(signer.jwks(), token)["sub"] == "user_1"
        assert signer.jwks() == jwks
        assert signer.jwks_json() == jwks_json

    errors = [r for r in caplog.records if r.name == SIGNER_LOG and r.levelno >= logging.ERROR]
    assert len(errors) == 1, caplog.text
    line = errors[0].getMessage()
    assert "\n" not in line
    assert line.startswith(f"signing keys not reloaded, still signing with {k1} and publishing 2 keys: ")
    assert "is not valid" in line

    # Repaired (and then rotated): the signer follows again.
    tmp = store.directory / "repair.tmp"
    tmp.write_bytes(good)
    os.replace(tmp, store.manifest_path)
    other(store).rotate(retired_lifetime=LIFETIME, force=True)
    clock.advance(5)
    assert signer.kid == manifest(store)[1]["kid"] != k1


def test_an_unreadable_new_key_keeps_every_loaded_key_never_half_a_key_ring(store, caplog):
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    k1, k2 = signer.kid, manifest(store)[1]["kid"]
    keys = other(store).rotate(retired_lifetime=LIFETIME, force=True)
    (store.directory / f"{keys[-1].kid}.pem").write_text("damaged")

    caplog.set_level(logging.ERROR, logger=SIGNER_LOG)
    clock.advance(5)
    # k2 (now active in the manifest) loaded fine, but the ring is replaced whole or not at all.
    assert kid_of(signer.sign(claims(), "at+jwt")) == k1
    assert [k["kid"] for k in signer.jwks()["keys"]] == [k1, k2]
    assert f"signing key {keys[-1].kid} cannot be read" in caplog.text


def test_a_store_losing_its_manifest_keeps_the_loaded_keys(store, caplog):
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, clock=clock)
    k1 = signer.kid
    store.manifest_path.unlink()
    caplog.set_level(logging.ERROR, logger=SIGNER_LOG)
    clock.advance(5)
    assert kid_of(signer.sign(claims(), "at+jwt")) == k1
    assert "has no active signing key" in caplog.text


def test_a_signer_cannot_start_without_an_active_key(tmp_path):
    with pytest.raises(KeyStoreError, match="has no active signing key"):
        TokenSigner(KeyStore(tmp_path / "keys"))


# -- threads ----------------------------------------------------------------------------

def test_signing_from_many_threads_across_rotations_always_names_the_key_that_signed(store):
    signer = TokenSigner(store, reload_interval=0)  # check at every call: the most interleaving
    rotator = other(store)
    stop = threading.Event()
    tokens: list[str] = []

    def sign_until_stopped():
        mine = []
        while not stop.is_set():
            mine.append(signer.sign(claims(), "at+jwt"))
            signer.jwks()
        tokens.extend(mine)

    threads = [threading.Thread(target=sign_until_stopped) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(2):
            rotator.rotate(retired_lifetime=LIFETIME, force=True)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert len({kid_of(t) for t in tokens}) >= 2
    published = {key["kid"]: pyjwt.PyJWK(key).key for key in signer.jwks()["keys"]}
    for token in tokens:  # the kid in every header names the key that signed it
        pyjwt.decode(token, published[kid_of(token)], algorithms=["RS256"])


# -- automatic rotation by age ------------------------------------------------------------

def test_rotate_if_due_publishes_a_next_key_then_rotates_once_it_is_old_enough(store_with_one_key):
    store = store_with_one_key
    (k1,) = [e["kid"] for e in manifest(store)]
    due = manifest(store)[0]["created_at"] + 86400
    kwargs = dict(max_active_age=86400, retired_lifetime=LIFETIME, min_next_age=MIN_AGE)

    assert store.rotate_if_due(now=due - 1, **kwargs) is None
    assert states(store) == [(k1, "active")]

    assert store.rotate_if_due(now=due, **kwargs) == "published"
    k2 = manifest(store)[1]["kid"]
    assert states(store) == [(k1, "active"), (k2, "next")]
    assert store.rotate_if_due(now=due + MIN_AGE - 1, **kwargs) is None

    assert store.rotate_if_due(now=due + MIN_AGE, **kwargs) == "rotated"
    assert states(store)[:2] == [(k1, "retired"), (k2, "active")]
    assert manifest(store)[2]["state"] == "next"
    # The new active key was created at `due`: the next rotation is a full period away.
    assert store.rotate_if_due(now=due + MIN_AGE + 1, **kwargs) is None


def test_of_many_workers_finding_the_rotation_due_exactly_one_rotates(store):
    now = manifest(store)[0]["created_at"] + 86400 + MIN_AGE
    stores = [other(store) for _ in range(8)]
    barrier = threading.Barrier(len(stores))

    def rotate(worker_store):
        barrier.wait()
        return worker_store.rotate_if_due(max_active_age=86400, retired_lifetime=LIFETIME, min_next_age=MIN_AGE, now=now)

    with ThreadPoolExecutor(len(stores)) as pool:
        outcomes = list(pool.map(rotate, stores))

    assert sorted(outcomes, key=str) == [None] * 7 + ["rotated"]
    assert [e["state"] for e in manifest(store)] == ["retired", "active", "next"]


def test_signers_with_automatic_rotation_rotate_once_when_the_active_key_is_old(store_with_one_key, caplog):
    store = store_with_one_key
    (k1,) = [e["kid"] for e in manifest(store)]
    wall = FakeClock(manifest(store)[0]["created_at"] + 86400)
    policy = RotationPolicy(reload_interval=5, min_next_age=MIN_AGE, retired_lifetime=LIFETIME, max_active_age=86400)
    clocks = [FakeClock() for _ in range(4)]
    signers = [TokenSigner(other(store), reload_interval=5, auto_rotation=policy, clock=c, wall_clock=wall)
               for c in clocks]

    def tick(seconds):
        for clock in clocks:
            clock.advance(seconds)
        barrier = threading.Barrier(len(signers))

        def sign(signer):
            barrier.wait()
            return kid_of(signer.sign(claims(), "at+jwt"))

        with ThreadPoolExecutor(len(signers)) as pool:
            return list(pool.map(sign, signers))

    caplog.set_level(logging.INFO, logger=SIGNER_LOG)
    # Due: one worker publishes a next key; nobody may sign with it yet.
    assert tick(5) == [k1] * 4
    assert [e["state"] for e in manifest(store)] == ["active", "next"]
    k2 = manifest(store)[1]["kid"]
    assert all(k2 in [k["kid"] for k in s.jwks()["keys"]] for s in signers)

    wall.advance(MIN_AGE - 5)
    assert tick(5) == [k1] * 4
    assert [e["state"] for e in manifest(store)] == ["active", "next"]

    # Published long enough: exactly one worker rotates, and every worker signs with k2.
    wall.advance(5)
    tick(5)
    assert [e["state"] for e in manifest(store)] == ["retired", "active", "next"]
    assert tick(5) == [k2] * 4
    assert caplog.text.count("automatic key rotation: rotated") == 1
    assert caplog.text.count("automatic key rotation: published") == 1


def test_without_automatic_rotation_an_old_key_stays_active(store_with_one_key):
    store = store_with_one_key
    wall = FakeClock(manifest(store)[0]["created_at"] + 10 * 365 * 86400)
    clock = FakeClock()
    signer = TokenSigner(store, reload_interval=5, auto_rotation=RotationPolicy(5, MIN_AGE, LIFETIME, 0),
                         clock=clock, wall_clock=wall)
    before = store.manifest_path.read_bytes()
    clock.advance(5)
    signer.sign(claims(), "at+jwt")
    assert store.manifest_path.read_bytes() == before


def test_the_rotation_policy_follows_the_settings(tmp_path):
    policy = RotationPolicy.from_settings(load_settings(environ={
        "AUTHSERVER_ACCESS_TOKEN_TTL": "900", "AUTHSERVER_KEY_RELOAD_SECONDS": "2", "AUTHSERVER_KEY_ROTATION_DAYS": "30",
    }))
    assert policy == RotationPolicy(reload_interval=2, min_next_age=JWKS_MAX_AGE + 2,
                                    retired_lifetime=900 + 2 + CLOCK_SKEW_MARGIN, max_active_age=30 * 86400)
    assert RotationPolicy.from_settings(load_settings(environ={})) == RotationPolicy(5, MIN_AGE, LIFETIME, 0)


# -- the command -----------------------------------------------------------------------------

def run(keys_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTHSERVER_")}
    env.update(AUTHSERVER_KEYS_DIR=str(keys_dir), AUTHSERVER_INSTANCE_DIR=str(keys_dir.parent / "instance"),
               AUTHSERVER_DATABASE_URL=f"sqlite:///{keys_dir.parent / 'authserver.db'}")
    return subprocess.run([str(AUTHSERVER), *args], capture_output=True, text=True, env=env,
                          cwd=keys_dir.parent, timeout=120)


def test_keys_rotate_refuses_a_fresh_next_key_in_one_line_and_rotates_with_force(store):
    k1, k2 = [e["kid"] for e in manifest(store)]
    before = store.manifest_path.read_bytes()

    refused = run(store.directory, "keys", "rotate")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(f"authserver: error: refusing to rotate: the next key {k2} was published ")
    assert store.manifest_path.read_bytes() == before

    started = int(time.time())
    rotated = run(store.directory, "keys", "rotate", "--force")
    assert rotated.returncode == 0, rotated.stderr
    keys = json.loads(rotated.stdout)["keys"]
    assert [(k["kid"], k["state"]) for k in keys][:2] == [(k1, "retired"), (k2, "active")]
    assert keys[2]["state"] == "next" and keys[2]["retired_at"] is None
    assert [set(k) for k in keys] == [{"kid", "state", "created_at", "retired_at"}] * 3
    retired_at = datetime.fromisoformat(keys[0]["retired_at"]).timestamp()
    assert started <= retired_at <= time.time()
    audit_line, message = rotated.stderr.splitlines()  # the audit log's line, then the command's
    assert message == f"now signing with {k2}; running servers switch within 5 s"
    assert json.loads(audit_line) | {"time": None} == {
        "time": None, "event": "signing_key_rotated", "account": None, "client": None, "source": None,
        "request_id": None, "kid": k2, "trigger": "command", "forced": True}

    listed = run(store.directory, "keys", "list")
    assert json.loads(listed.stdout) == {"keys": keys}


def test_keys_rotate_on_a_damaged_store_is_one_line(store):
    store.manifest_path.write_text("{not json")
    result = run(store.directory, "keys", "rotate", "--force")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"authserver: error: the key manifest {store.manifest_path} is not valid: ")
