"""Race fixtures: one deployment prepared with the CLI on its own database (an SQLite file, or a
fresh PostgreSQL database with AUTHSERVER_TEST_DATABASE=postgres), served by real `authserver
serve` processes with two workers, so that concurrent requests really run in parallel."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import create_engine

from ..databases import fresh_database
from ..e2e.processes import HOST, Workspace, free_port, new_workspace, running_server

EMAIL = "grace@example.com"
PASSWORD = "races correct horse battery staple"
REDIRECT_URI = "https://app.example.com/callback"
APP_SCOPE = "openid read:users keys:manage"
API_SCOPE = "read:users"


@dataclass(frozen=True)
class Deployment:
    workspace: Workspace
    database_url: str
    app: tuple[str, str]  # client_id, secret: authorization_code and refresh_token, for the user
    api: tuple[str, str]  # client_id, secret: client_credentials, the sample API service's own


@pytest.fixture(scope="session")
def races_database_url(tmp_path_factory):
    with fresh_database(tmp_path_factory, "races-db") as url:
        yield url


@pytest.fixture(scope="session")
def deployment(tmp_path_factory, races_database_url) -> Deployment:
    workspace = new_workspace(tmp_path_factory, races_database_url, "races")
    workspace.run("db", "upgrade")
    workspace.run("keys", "generate")
    # enterprise without custom limits: the API service never rate-limits the key rotation test
    workspace.run("users", "create", "--email", EMAIL, "--name", "Grace Hopper", "--plan", "enterprise",
                  "--password-stdin", stdin=PASSWORD + "\n")
    app = json.loads(workspace.run(
        "clients", "create", "--name", "Races App", "--redirect-uri", REDIRECT_URI,
        "--grant-type", "authorization_code", "refresh_token", "--scope", APP_SCOPE,
    ))
    api = json.loads(workspace.run("clients", "create", "--name", "Races API", "--grant-type", "client_credentials",
                                   "--scope", API_SCOPE))
    return Deployment(workspace, races_database_url, (app["client_id"], app["client_secret"]),
                      (api["client_id"], api["client_secret"]))


@contextmanager
def serving(deployment: Deployment, **settings: str):
    """`authserver serve` (two workers) for the deployment on a port of its own, with `settings`
    (AUTHSERVER_* variables) added; healthy on entry, stopped by its PID on exit."""
    port = free_port()
    workspace = replace(deployment.workspace, port=port,
                        env={**deployment.workspace.env, "AUTHSERVER_ISSUER": f"http://{HOST}:{port}", **settings})
    with running_server(workspace, workers=2) as server:
        yield server


@pytest.fixture(scope="session")
def database(deployment):
    """An engine on the deployment's database, to count what the servers stored."""
    engine = create_engine(deployment.database_url)
    yield engine
    engine.dispose()
