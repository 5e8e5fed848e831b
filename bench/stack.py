"""What the bench measures, started on loopback in production configuration: a fresh database
(PostgreSQL when reachable, else SQLite), Redis when reachable (else in-memory counters),
`authserver serve` (granian, one worker per core), `authserver api serve`, and the same
API view without authentication and rate limiting (bench/bare_api.py). Stopped by PID."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from . import procs

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AUTHSERVER = BIN / "authserver"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A server we started (granian's main process); its workers are its children."""

    name: str
    port: int
    process: subprocess.Popen
    log: Path
    expected_workers: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[int]:
        return procs.children(self.pid)

    def worker_rss_mb(self) -> list[float]:
        return [rss for rss in (procs.rss_mb(pid) for pid in sorted(self.workers())) if rss is not None]

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer /healthz within {timeout} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        # Every worker booted (they start one by one): wait until all are there.
        while len(self.workers()) < self.expected_workers and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        procs.stop(self.process)


@dataclass
class Stack:
    workdir: Path
    database_url: str
    database_kind: str  # "PostgreSQL" or "SQLite"
    postgres_admin_url: str | None
    postgres_db: str | None
    redis_url: str | None
    ratelimit_prefix: str
    auth_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    bare_port: int = field(default_factory=free_port)
    services: list[Service] = field(default_factory=list)

    # -- settings ------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.auth_port}"

    @property
    def audience(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def env(self, **extra: str) -> dict:
        """The environment of every process: ours without AUTHSERVER_*, plus the deployment's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
        env.update(
            AUTHSERVER_ISSUER=self.issuer,
            AUTHSERVER_API_AUDIENCE=self.audience,
            AUTHSERVER_DATABASE_URL=self.database_url,
            AUTHSERVER_KEYS_DIR=str(self.workdir / "keys"),
            AUTHSERVER_INSTANCE_DIR=str(self.workdir / "instance"),
            AUTHSERVER_SECRET_KEY=self.secret_key,
            AUTHSERVER_RATELIMIT_PREFIX=self.ratelimit_prefix,
        )
        if self.redis_url:
            env["AUTHSERVER_REDIS_URL"] = self.redis_url
        env.update(extra)
        return env

    @property
    def secret_key(self) -> str:
        path = self.workdir / "secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text()

    def describe(self) -> str:
        db = (f"PostgreSQL (fresh database {self.postgres_db}, dropped at the end)" if self.database_kind == "PostgreSQL"
              else f"SQLite ({self.database_url.removeprefix('sqlite:///')})")
        store = f"Redis at {self.redis_url} (key prefix {self.ratelimit_prefix})" if self.redis_url else \
            "in-memory counters in each process (one API worker)"
        return f"database: {db}; rate limits and throttling: {store}"

    # -- the CLI -------------------------------------------------------------------------------

    def cli_batch(self, commands: list[tuple[list[str], str | None]]) -> list[str]:
        """Several CLI commands through `authserver.cli.main` in one process (bench/cli_batch.py):
        their stdout, in order."""
        import json

        payload = json.dumps([{"args": args, "stdin": stdin} for args, stdin in commands])
        result = subprocess.run([sys.executable, "-m", "bench.cli_batch"], input=payload, capture_output=True,
                                text=True, cwd=self.workdir, env=self.env(PYTHONPATH=str(ROOT)), timeout=300, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"bench.cli_batch failed: {result.stderr.strip()[-2000:]}")
        answers = json.loads(result.stdout)
        for (args, _), answer in zip(commands, answers):
            if answer["code"] != 0:
                raise RuntimeError(f"authserver {' '.join(args)} failed: {answer['stderr'].strip()}")
        if len(answers) != len(commands):
            raise RuntimeError("bench.cli_batch stopped early")
        return [answer["stdout"] for answer in answers]

    # -- processes -----------------------------------------------------------------------------

    def start(self, name: str, command: list[str], port: int, workers: int, env: dict | None = None,
              cpus: str | None = None, wait: bool = True) -> Service:
        log = self.workdir / f"{name}.log"
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=self.workdir, env=env or self.env(), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=out)
        service = Service(name, port, process, log, workers)
        self.services.append(service)
        if wait:
            service.wait_healthy()
        return service

    def start_auth(self, workers: int, name: str = "authserver", cpus: str | None = None,
                   port: int | None = None) -> Service:
        port = port or self.auth_port
        return self.start(name, [str(AUTHSERVER), "serve", "--host", HOST, "--port", str(port),
                                 "--workers", str(workers)], port, workers, cpus=cpus)

    def start_api(self, workers: int, client_id: str | None, client_secret: str | None, wait: bool = True,
                  name: str = "api", port: int | None = None) -> Service:
        """`authserver api serve`; without client credentials, usage metering is off (and API keys
        are refused)."""
        port = port or self.api_port
        extra = {"AUTHSERVER_API_CLIENT_ID": client_id, "AUTHSERVER_API_CLIENT_SECRET": client_secret} \
            if client_id else {}
        return self.start(name, [str(AUTHSERVER), "api", "serve", "--host", HOST, "--port", str(port),
                                 "--workers", str(workers)], port, workers, env=self.env(**extra), wait=wait)

    def start_bare_api(self, workers: int, token: str, wait: bool = True) -> Service:
        """The API's own app with GET /v1/users served without require_auth and the rate limiter."""
        env = self.env(BENCH_BARE_TOKEN=token, PYTHONPATH=str(ROOT))
        return self.start("bare-api", [sys.executable, "-m", "bench.bare_api", "--port", str(self.bare_port),
                                       "--workers", str(workers)], self.bare_port, workers, env=env, wait=wait)

    def stop_service(self, service: Service) -> None:
        service.stop()
        if service in self.services:
            self.services.remove(service)

    def stop_all(self) -> None:
        while self.services:
            self.stop_service(self.services[-1])

    # -- PostgreSQL backends of our database (their CPU is reported beside the server's) --------

    def db_backend_pids(self) -> list[int]:
        if self.database_kind != "PostgreSQL":
            return []
        import psycopg

        with psycopg.connect(_libpq(self.postgres_admin_url), autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.postgres_db,)).fetchall()
        return [row[0] for row in rows]


    def usage_batches(self) -> int | None:
        """How many usage reports (POST /v1/usage batches) the server has stored."""
        try:
            if self.database_kind == "PostgreSQL":
                import psycopg

                with psycopg.connect(_libpq(self.database_url), autocommit=True, connect_timeout=5) as conn:
                    return conn.execute("SELECT count(*) FROM usage_batches").fetchone()[0]
            import sqlite3

            with sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=10) as conn:
                return conn.execute("SELECT count(*) FROM usage_batches").fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - a diagnostic: n/a rather than a failed run
            print(f"# could not count usage batches: {exc}", file=sys.stderr)
            return None


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def open_stack(workdir: Path, store: str) -> Stack:
    """Choose and prepare the stores: `store` is auto (PostgreSQL and Redis when reachable),
    postgres (both required) or sqlite (SQLite and in-memory counters)."""
    prefix = f"authserver-bench-{secrets.token_hex(4)}"
    database_url, kind, admin, dbname = f"sqlite:///{workdir / 'authserver.db'}", "SQLite", None, None
    redis_url = None
    if store in ("auto", "postgres"):
        admin = os.environ.get("AUTHSERVER_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
        try:
            import psycopg

            dbname = f"authserver_bench_{secrets.token_hex(5)}"
            with psycopg.connect(_libpq(admin), autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            base = admin.rsplit("/", 1)[0]
            database_url, kind = f"{base}/{dbname}", "PostgreSQL"
        except Exception as exc:  # noqa: BLE001 - any failure to reach it means: not reachable
            if store == "postgres":
                raise RuntimeError(f"PostgreSQL at {admin} is not usable: {exc}") from None
            print(f"# PostgreSQL not reachable ({str(exc).splitlines()[0]}): using SQLite", file=sys.stderr)
            admin = dbname = None
        url = os.environ.get("AUTHSERVER_BENCH_REDIS_URL", DEFAULT_REDIS)
        try:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            client.close()
            redis_url = url
        except Exception as exc:  # noqa: BLE001 - any failure to reach it means: not reachable
            if store == "postgres":
                raise RuntimeError(f"Redis at {url} is not usable: {exc}") from None
            print(f"# Redis not reachable ({exc}): using in-memory counters", file=sys.stderr)
    return Stack(workdir, database_url, kind, admin, dbname, redis_url, prefix)


def close_stack(stack: Stack) -> None:
    """Stop every process, drop the database, delete our Redis keys."""
    stack.stop_all()
    if stack.database_kind == "PostgreSQL" and stack.postgres_db:
        import psycopg

        try:
            with psycopg.connect(_libpq(stack.postgres_admin_url), autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{stack.postgres_db}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - clean-up goes on and says what it could not do
            print(f"# could not drop {stack.postgres_db}: {exc}", file=sys.stderr)
    if stack.redis_url:
        try:
            import redis

            client = redis.Redis.from_url(stack.redis_url, socket_timeout=2)
            keys = list(client.scan_iter(match=f"{stack.ratelimit_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        except Exception as exc:  # noqa: BLE001 - clean-up goes on and says what it could not do
            print(f"# could not delete the Redis keys {stack.ratelimit_prefix}*: {exc}", file=sys.stderr)
