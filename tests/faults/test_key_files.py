"""A damaged or missing key file: `authserver serve` refuses to start with one line and a
non-zero exit; a running server whose key store is damaged under it (a PEM half-written during a
rotation) keeps signing with the keys it has, logs it, and never signs with the half-read key;
once the file is whole, it follows the rotation."""

from __future__ import annotations

import json
import os
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from ..e2e.processes import HOST, new_workspace, run_cli, running_server
from .deployment import prepare

pytestmark = pytest.mark.e2e

DEADLINE = 30  # seconds: a bound for what must happen, never a measured speed


def _serve(workspace):
    return run_cli("serve", "--host", HOST, "--port", workspace.port, "--workers", "1",
                   env=workspace.env, cwd=workspace.workdir, timeout=60)


def _only_key(keys_dir) -> tuple[str, os.PathLike]:
    [entry] = json.loads((keys_dir / "keyset.json").read_text())["keys"]
    return entry["kid"], keys_dir / f"{entry['kid']}.pem"


@pytest.mark.parametrize("damage", ["truncated key", "missing key", "corrupt manifest", "missing manifest",
                                    "another key in its file"])
def test_the_server_refuses_to_start_with_one_line(tmp_path_factory, damage):
    workspace = new_workspace(tmp_path_factory, f"sqlite:///{tmp_path_factory.mktemp('keys-db') / 'a.db'}", "keys")
    workspace.run("keys", "generate")  # serve checks the keys before it touches the database
    keys_dir = workspace.workdir / "keys"
    kid, pem = _only_key(keys_dir)
    if damage == "truncated key":
        pem.write_bytes(pem.read_bytes()[:400])
    elif damage == "missing key":
        pem.unlink()
    elif damage == "corrupt manifest":
        (keys_dir / "keyset.json").write_text('{"keys": [')
    elif damage == "missing manifest":
        (keys_dir / "keyset.json").unlink()
    else:
        pem.write_bytes(_new_pem())
    result = _serve(workspace)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("authserver: error: cannot start: "), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in keys_dir.glob("*.pem")) == ([] if damage == "missing key" else [pem.name])


def _new_pem() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_a_half_written_key_is_never_used_and_the_server_keeps_signing(tmp_path_factory):
    deployment = prepare(tmp_path_factory, f"sqlite:///{tmp_path_factory.mktemp('keys-db') / 'b.db'}", "keys-live",
                         AUTHSERVER_KEY_RELOAD_SECONDS="1")
    keys_dir = deployment.workspace.workdir / "keys"
    old_kid, _ = _only_key(keys_dir)
    with running_server(deployment.workspace, workers=2) as server:
        def token_kid() -> str:
            response = requests.post(server.url("/oauth/token"), auth=deployment.service, timeout=10,
                                     data={"grant_type": "client_credentials", "scope": "read:users"})
            assert response.status_code == 200, response.text
            token = response.json()["access_token"]
            # Verifies under the published JWKS, fetched now.
            key = jwt.PyJWKClient(server.url("/.well-known/jwks.json"), cache_jwk_set=False).get_signing_key_from_jwt(token)
            jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})
            return jwt.get_unverified_header(token)["kid"]

        assert token_kid() == old_kid
        # A rotation caught half-way: the manifest names a new active key whose PEM is cut short.
        pem = _new_pem()
        new_kid = RSAKey.import_key(pem).thumbprint()
        (keys_dir / f"{new_kid}.pem").write_bytes(pem[: len(pem) // 2])
        manifest = {"keys": [{"kid": old_kid, "state": "retired", "created_at": int(time.time()) - 60,
                              "retired_at": int(time.time())},
                             {"kid": new_kid, "state": "active", "created_at": int(time.time())}]}
        (keys_dir / "keyset.tmp").write_text(json.dumps(manifest))
        os.replace(keys_dir / "keyset.tmp", keys_dir / "keyset.json")

        deadline = time.monotonic() + DEADLINE
        while server.stderr().count("signing keys not reloaded") < 2:  # both workers noticed
            assert token_kid() == old_kid
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.2)
        for _ in range(10):
            assert token_kid() == old_kid
        assert new_kid not in requests.get(server.url("/.well-known/jwks.json"), timeout=10).text
        [line] = {line for line in server.stderr().splitlines() if "signing keys not reloaded" in line}
        assert f"still signing with {old_kid}" in line and new_kid in line

        # The file is whole now: the workers follow the rotation by themselves.
        (keys_dir / f"{new_kid}.pem").write_bytes(pem)
        deadline = time.monotonic() + DEADLINE
        while {token_kid() for _ in range(6)} != {new_kid}:
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.2)
