"""Two authorization servers and two sample API services as one deployment, for end-to-end tests
of what instances share: one database, one Redis, one keys directory, one issuer and one session
key, as behind a load balancer. Each process is a real `authserver serve` / `authserver api serve`
(granian, 2 workers) on its own free loopback port, started together and stopped by its PID.

The issuer is server A's address: the API services find the server (discovery, JWKS,
introspection, usage reports) there, as they would find the load balancer; tests reach B directly.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from .processes import HOST, ApiService, Server, Workspace, authserver_env, free_port

WORKERS = 2


@dataclass
class Cluster:
    workspace: Workspace  # the shared deployment: its CLI commands act on what every instance uses
    a: Server  # the issuer's address
    b: Server
    api_a: ApiService
    api_b: ApiService
    facts: dict = field(default_factory=dict)  # what the test module prepared (clients, users)

    @property
    def servers(self) -> tuple[Server, Server]:
        return self.a, self.b

    @property
    def apis(self) -> tuple[ApiService, ApiService]:
        return self.api_a, self.api_b


def cluster_workspace(tmp_path_factory, database_url: str, redis_url: str, **settings: str) -> Workspace:
    """The settings every server instance shares; its port is server A's (the issuer)."""
    workdir = tmp_path_factory.mktemp("cluster")
    port = free_port()
    env = authserver_env(
        AUTHSERVER_DATABASE_URL=database_url,
        AUTHSERVER_REDIS_URL=redis_url,
        AUTHSERVER_KEYS_DIR=str(workdir / "keys"),
        AUTHSERVER_INSTANCE_DIR=str(workdir / "instance"),
        AUTHSERVER_ISSUER=f"http://{HOST}:{port}",
        # Set, not generated into instance/: a session begun at one instance is valid at the other.
        AUTHSERVER_SECRET_KEY=secrets.token_urlsafe(48),
        **settings,
    )
    return Workspace(workdir, port, env)


@contextmanager
def running_cluster(workspace: Workspace, *, api_settings: dict):
    """Servers A and B, then API services A and B, all healthy on entry, all stopped on exit.

    `api_settings`: the API services' own AUTHSERVER_* variables (both get the same ones, and
    the server's issuer, audience and Redis)."""
    api_env = authserver_env(
        AUTHSERVER_ISSUER=workspace.issuer,
        AUTHSERVER_API_AUDIENCE=workspace.env["AUTHSERVER_API_AUDIENCE"],
        AUTHSERVER_REDIS_URL=workspace.env["AUTHSERVER_REDIS_URL"],
        **api_settings,
    )
    with ExitStack() as stack:
        servers = [_process(Server, workspace.env, workspace.workdir / name, port)
                   for name, port in (("server-a", workspace.port), ("server-b", free_port()))]
        _start_all(stack, servers)  # the API services ask the server for its discovery document
        apis = [_process(ApiService, api_env, workspace.workdir / name, free_port()) for name in ("api-a", "api-b")]
        _start_all(stack, apis)
        yield Cluster(workspace, *servers, *apis)


def _process(kind, env: dict, cwd, port: int):
    cwd.mkdir()  # each process writes its stderr file into its own directory
    return kind(env=env, cwd=cwd, port=port, workers=WORKERS)


def _start_all(stack: ExitStack, processes) -> None:
    """Start them together (their start-ups overlap), then wait until each is healthy."""
    for process in processes:
        stack.callback(process.stop)
        process.start()
    for process in processes:
        process.wait_until_healthy()
