"""Key rotation on the real server: `authserver serve --workers 2` keeps running while
`authserver keys rotate` runs twice beside it. A token issued before still verifies against the
served JWKS (its key is published as retired), new tokens name the new active key, and every
worker serves the new JWKS without a restart."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
import requests

from .processes import cli, new_workspace, run_cli, running_server

pytestmark = pytest.mark.e2e

API_AUDIENCE = "http://127.0.0.1:5001"  # the default AUTHSERVER_API_AUDIENCE
RELOAD_SECONDS = 1  # AUTHSERVER_KEY_RELOAD_SECONDS: short, so the test waits little
FRESH_CONNECTIONS = 30


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, e2e_database_url):
    workspace = new_workspace(tmp_path_factory, e2e_database_url, "e2e-rotation",
                              AUTHSERVER_KEY_RELOAD_SECONDS=str(RELOAD_SECONDS))
    workspace.run("db", "upgrade")
    workspace.run("keys", "generate")
    client = json.loads(workspace.run(
        "clients", "create", "--name", "M", "--grant-type", "client_credentials", "--scope", "read:users",
    ))
    return workspace, client


@pytest.fixture(scope="module")
def server(deployment):
    with running_server(deployment[0]) as server:
        yield server


def get_token(server, client) -> str:
    # No Session: a fresh connection, and so possibly the other worker, for every request.
    response = requests.post(
        server.url("/oauth/token"), data={"grant_type": "client_credentials", "scope": "read:users"},
        auth=(client["client_id"], client["client_secret"]), headers={"Connection": "close"}, timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def served_kids(server) -> list[str]:
    response = requests.get(server.url("/.well-known/jwks.json"), headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


def verify(token: str, server) -> dict:
    """What a resource service does: PyJWT, the key named by the token's kid in the served JWKS."""
    key = jwt.PyJWKClient(server.url("/.well-known/jwks.json"), cache_jwk_set=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=API_AUDIENCE, issuer=server.base_url,
                      leeway=0, options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]})


def worker_pids(master_pid: int) -> set[int]:
    """The server's workers: its main process's children (Linux /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == master_pid:
            children.add(int(stat.parent.name))
    return children


def keys_by_state(keys: list[dict], state: str) -> list[str]:
    return [key["kid"] for key in keys if key["state"] == state]


def test_rotating_twice_under_a_running_server(server, deployment):
    workspace, client = deployment
    env, workdir = workspace.env, workspace.workdir
    workers = worker_pids(server.process.pid)
    assert len(workers) == 2, workers

    # Before: one active key signs; a token issued now verifies against the served JWKS.
    (original,) = keys_by_state(json.loads(cli("keys", "list", env=env, cwd=workdir))["keys"], "active")
    old_token = get_token(server, client)
    assert jwt.get_unverified_header(old_token)["kid"] == original
    assert verify(old_token, server)["sub"] == client["client_id"]

    # The safety rule: without --force, a next key published just now is not promoted.
    refused = run_cli("keys", "rotate", env=env, cwd=workdir)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("authserver: error: refusing to rotate: ") and refused.stderr.count("\n") == 1

    # Two rotations, by the CLI, beside the running server.
    first = json.loads(cli("keys", "rotate", "--force", env=env, cwd=workdir))["keys"]
    second = json.loads(cli("keys", "rotate", "--force", env=env, cwd=workdir))["keys"]
    assert keys_by_state(first, "retired") == [original]
    (active,) = keys_by_state(second, "active")
    (upcoming,) = keys_by_state(second, "next")
    retired = keys_by_state(second, "retired")
    assert retired == [original, keys_by_state(first, "active")[0]]
    assert all(key["retired_at"] for key in second if key["state"] == "retired")
    published = [key["kid"] for key in second]

    time.sleep(RELOAD_SECONDS + 0.5)  # the documented bound: every worker follows within it

    # The token issued before both rotations still verifies: its key is published, as retired.
    assert verify(old_token, server)["sub"] == client["client_id"]
    # New tokens, from either worker, name the new active key and verify too.
    for _ in range(5):
        new_token = get_token(server, client)
        assert jwt.get_unverified_header(new_token)["kid"] == active
        assert verify(new_token, server)["sub"] == client["client_id"]

    # Every worker serves the new key set: fresh connections land on both.
    answers = [served_kids(server) for _ in range(FRESH_CONNECTIONS)]
    assert answers == [published] * FRESH_CONNECTIONS, answers
    assert active in published and upcoming in published and original in published

    # ... and none of them was restarted to get there.
    assert server.process.poll() is None
    assert worker_pids(server.process.pid) == workers
    assert "Traceback" not in server.stderr(), server.stderr()
