"""End-to-end fixtures: a deployment prepared only through the `authserver` CLI, in a temporary
directory, and the real server (`authserver serve`, granian) running on a free loopback port."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..databases import fresh_database
from .processes import Workspace, new_workspace, running_server

EMAIL = "grace@example.com"
NAME = "Grace Hopper"
PASSWORD = "e2e correct horse battery staple"
CLIENT_NAME = "E2E Example App"
REDIRECT_URI = "https://app.example.com/callback"
SCOPE = "openid read:users"
API_AUDIENCE = "http://127.0.0.1:5001"  # the default AUTHSERVER_API_AUDIENCE


@dataclass(frozen=True)
class Deployment:
    workdir: Path
    env: dict
    port: int
    issuer: str
    kid: str  # the signing key `keys generate` made
    user_id: str  # the `sub` of the user's tokens, as printed by `users create`
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def e2e_database_url(tmp_path_factory):
    """A fresh, empty database: an SQLite file, or a new PostgreSQL database when asked for."""
    with fresh_database(tmp_path_factory, "e2e-db") as url:
        yield url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, e2e_database_url) -> Deployment:
    workspace = new_workspace(tmp_path_factory, e2e_database_url, "e2e")
    workspace.run("db", "upgrade")
    key = json.loads(workspace.run("keys", "generate"))
    user = json.loads(workspace.run("users", "create", "--email", EMAIL, "--name", NAME, "--password-stdin",
                                    stdin=PASSWORD + "\n"))
    client = json.loads(workspace.run(
        "clients", "create", "--name", CLIENT_NAME, "--redirect-uri", REDIRECT_URI,
        "--grant-type", "authorization_code", "refresh_token", "--scope", SCOPE,
    ))
    return Deployment(
        workdir=workspace.workdir, env=workspace.env, port=workspace.port, issuer=workspace.issuer, kid=key["kid"],
        user_id=user["id"], client_id=client["client_id"], client_secret=client["client_secret"],
    )


@pytest.fixture(scope="module")
def server(deployment):
    with running_server(Workspace(deployment.workdir, deployment.port, deployment.env)) as server:
        yield server
