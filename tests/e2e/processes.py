"""Real `authserver` processes for end-to-end tests.

The CLI runs as subprocesses; the server is started with `authserver serve` (the sample API
service with `authserver api serve`), awaited on /readyz (the API service: /healthz) and stopped
by its PID. Everything
listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

HOST = "127.0.0.1"
# The console script installed next to the interpreter running the tests (the project's venv).
AUTHSERVER = Path(sys.executable).parent / "authserver"

CLI_TIMEOUT = 120  # seconds; the slowest step (an Argon2 hash, an RSA key) takes well under one
START_TIMEOUT = 30  # until the probe answers 200
STOP_TIMEOUT = 15  # after SIGTERM, before SIGKILL


def free_port() -> int:
    """A port the OS reports free right now (another process could still take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def authserver_env(**settings: str) -> dict:
    """A child's environment: ours without any AUTHSERVER_* variable, plus `settings`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTHSERVER_")}
    env.update(settings)
    return env


def _command(args) -> list[str]:
    if not AUTHSERVER.exists():
        pytest.fail(f"{AUTHSERVER} does not exist: install the project into this venv (pip install -e '.[test]')")
    return [str(AUTHSERVER), *map(str, args)]


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM (granian: graceful shutdown), wait, then SIGKILL if it is still running."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_cli(*args, env: dict, cwd: Path, stdin: str | None = None, timeout: float = CLI_TIMEOUT):
    """Run `authserver ARGS…` to completion; the caller judges its exit status and output."""
    with subprocess.Popen(
        _command(args), env=env, cwd=cwd, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as process:
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(process)
            _, stderr = process.communicate()
            pytest.fail(f"`authserver {' '.join(map(str, args))}` still ran after {timeout}s; stderr:\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def cli(*args, env: dict, cwd: Path, stdin: str | None = None) -> str:
    """Run `authserver ARGS…`, which must succeed; returns its stdout."""
    result = run_cli(*args, env=env, cwd=cwd, stdin=stdin)
    if result.returncode != 0:
        pytest.fail(f"`authserver {' '.join(map(str, args))}` exited {result.returncode}:\n{result.stderr}")
    return result.stdout


class Server:
    """`authserver serve` on 127.0.0.1:<port>; its output goes to files in `log_dir`."""

    # Started means ready: its database and keys answer (the API service's needs no issuer yet).
    probe = "/readyz"

    def __init__(self, *, env: dict, cwd: Path, port: int, workers: int = 2):
        self.env = env
        self.cwd = cwd
        self.port = port
        self.workers = workers
        self.base_url = f"http://{HOST}:{port}"
        self.stderr_path = cwd / "server.stderr"
        self.process: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> None:
        # Files, not pipes: nobody reads a pipe while the server runs, and a full one would block it.
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                _command(["serve", "--host", HOST, "--port", self.port, "--workers", self.workers]),
                env=self.env, cwd=self.cwd,
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            )

    def wait_until_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with status {self.process.returncode} before it was healthy:\n{self.stderr()}")
            try:
                if requests.get(self.url(self.probe), timeout=2, allow_redirects=False).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail(f"GET {self.probe} did not answer 200 within {timeout}s; server stderr:\n{self.stderr()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class ApiService(Server):
    """`authserver api serve` on 127.0.0.1:<port>, awaited on /healthz and stopped by its PID."""

    probe = "/healthz"

    def start(self) -> None:
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                _command(["api", "serve", "--host", HOST, "--port", self.port, "--workers", self.workers]),
                env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            )


@dataclass(frozen=True)
class Workspace:
    """One deployment's directory, port and settings; its CLI commands run inside the directory,
    so no relative default can touch the repository."""

    workdir: Path
    port: int
    env: dict

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.port}"

    def run(self, *args, stdin: str | None = None) -> str:
        return cli(*args, env=self.env, cwd=self.workdir, stdin=stdin)


def new_workspace(tmp_path_factory, database_url: str, name: str, **settings: str) -> Workspace:
    workdir = tmp_path_factory.mktemp(name)
    port = free_port()
    env = authserver_env(
        AUTHSERVER_DATABASE_URL=database_url,
        AUTHSERVER_KEYS_DIR=str(workdir / "keys"),
        AUTHSERVER_INSTANCE_DIR=str(workdir / "instance"),
        AUTHSERVER_ISSUER=f"http://{HOST}:{port}",
        **settings,
    )
    return Workspace(workdir, port, env)


@contextmanager
def running_server(workspace: Workspace, workers: int = 2):
    """`authserver serve` for the workspace, healthy on entry, stopped by its PID on exit."""
    server = Server(env=workspace.env, cwd=workspace.workdir, port=workspace.port, workers=workers)
    server.start()
    try:
        server.wait_until_healthy()
        yield server
    finally:
        server.stop()
