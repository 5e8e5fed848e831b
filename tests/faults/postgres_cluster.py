"""A private PostgreSQL cluster for outage tests: its own data directory, socket directory and
loopback port, run as the `postgres` user (PostgreSQL refuses to run as root), stopped and
started by the test. The shared server (AUTHSERVER_TEST_POSTGRES_URL) is never touched.

Under CI=true a missing PostgreSQL installation fails the test; elsewhere it skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..stores import free_port, unavailable

OWNER = "postgres"
COMMAND_TIMEOUT = 60


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        unavailable("no PostgreSQL installation under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class PrivatePostgres:
    """`initdb` once, then `start()` / `stop()` as often as the test needs; `remove()` at the end."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        try:
            self.owner = pwd.getpwnam(OWNER)
        except KeyError:
            unavailable(f"there is no {OWNER!r} user to run a private PostgreSQL as")
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="authserver-pg-"))
        os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OWNER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr or result.stdout}")

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.sockets.mkdir()
        os.chown(self.sockets, self.owner.pw_uid, self.owner.pw_gid)
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-D", str(self.data), "-m", mode)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop it if it runs (immediately: nothing is kept) and delete its files."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
