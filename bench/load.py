"""Load from wrk (a separate process, with the Lua scripts in bench/lua), and what one measured
point is: a warm-up, then N runs, each with the server's CPU seconds read from /proc before and
after, and the medians."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import procs

LUA = Path(__file__).resolve().parent / "lua"


def ensure_wrk() -> str:
    """Debian's wrk, installed with apt when missing (as ../shared/bench/load.sh does)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("# installing wrk (apt-get install wrk) …", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "check": False}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet).returncode != 0:  # noqa: PLW1510
            subprocess.run(["apt-get", "update", "-qq"], **quiet)  # noqa: PLW1510
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)  # noqa: PLW1510
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: wrk is missing and could not be installed: apt-get install wrk")
    return found


@dataclass
class Run:
    result: dict  # the RESULT line of the script, as numbers
    cpu_s: float  # the measured process tree's CPU over the run (user + system)
    cpu_sys_s: float  # of which in the kernel
    db_cpu_s: float | None  # PostgreSQL backends serving our database, when on PostgreSQL
    busy_before: float  # whole-machine busy % just before the run
    other_cpu: dict = field(default_factory=dict)  # CPU of other trees watched (e.g. the auth server during API load)

    @property
    def ok(self) -> int:
        return int(self.result.get("ok", 0))

    @property
    def per_cpu_s(self) -> float | None:
        return self.ok / self.cpu_s if self.cpu_s > 0 else None

    @property
    def per_cpu_s_with_db(self) -> float | None:
        if self.db_cpu_s is None:
            return None
        total = self.cpu_s + self.db_cpu_s
        return self.ok / total if total > 0 else None

    def ms_per_unit(self, part: str = "all") -> float | None:
        if not self.ok:
            return None
        seconds = {"all": self.cpu_s, "sys": self.cpu_sys_s, "user": self.cpu_s - self.cpu_sys_s}[part]
        return 1000 * seconds / self.ok

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.result["duration_s"] if self.result.get("duration_s") else 0.0


@dataclass
class Point:
    """One scenario at one concurrency: its runs and their medians."""

    key: str
    label: str
    unit: str  # "req" or "flows"
    concurrency: int
    runs: list[Run]
    note: str = ""

    def median(self, getter: Callable[[Run], float | None]) -> float | None:
        values = [v for v in (getter(r) for r in self.runs) if v is not None]
        return statistics.median(values) if values else None

    @property
    def rate(self) -> float | None:
        return self.median(lambda r: r.ok_per_s)

    @property
    def per_cpu_s(self) -> float | None:
        return self.median(lambda r: r.per_cpu_s)

    @property
    def per_cpu_s_with_db(self) -> float | None:
        return self.median(lambda r: r.per_cpu_s_with_db)

    def ms_per_unit(self, part: str = "all") -> float | None:
        """Median server CPU milliseconds per unit: all, user or sys (kernel)."""
        return self.median(lambda r: r.ms_per_unit(part))

    def latency(self, name: str) -> float | None:
        return self.median(lambda r: r.result.get(name))

    @property
    def errors(self) -> int:
        return int(sum(r.result.get("non2xx", 0) + r.result.get("sock_errors", 0)
                       + r.result.get("bad_answers", 0) + r.result.get("starved", 0) for r in self.runs))

    @property
    def busy(self) -> float:
        return max(r.busy_before for r in self.runs) if self.runs else 0.0


@dataclass
class Load:
    """How to run wrk: connections, threads, durations; CPU pinning for wrk itself."""

    wrk: str
    runs: int
    duration: int
    warmup: int
    log_dir: Path
    threads: int = 1
    wrk_cpus: str | None = None
    quiet: bool = False
    busy_seconds: float = 0.5  # how long the machine is sampled before each run
    quiet_wait: float = 0.0  # up to this long, wait for the machine to be quiet (≤ 15 % busy) before a run

    def quiet_enough(self) -> float:
        """The machine's busy % just before a run, after waiting (up to `quiet_wait`) for other
        load to pass, as load.sh does; the value seen goes into the table either way."""
        busy = procs.busy_percent(self.busy_seconds)
        deadline = time.monotonic() + self.quiet_wait
        while busy > 15 and time.monotonic() < deadline:
            busy = procs.busy_percent(1.0)
        return busy

    def wrk_command(self, url: str, script: str, connections: int, seconds: int) -> list[str]:
        threads = min(self.threads, connections)
        command = [self.wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                   "-s", str(LUA / script), url]
        if self.wrk_cpus:
            command = ["taskset", "-c", self.wrk_cpus, *command]
        return command

    def run_wrk(self, url: str, script: str, connections: int, seconds: int, env: dict, log_name: str,
                before: Callable[[], None] | None = None) -> dict:
        if before:
            before()
        full_env = {**os.environ, **env, "BENCH_LUA_DIR": str(LUA), "BENCH_THREADS": str(min(self.threads, connections))}
        command = self.wrk_command(url, script, connections, seconds)
        completed = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=seconds + 60,
                                   check=False)
        (self.log_dir / f"{log_name}.txt").write_text(
            f"$ {' '.join(command)}\n{completed.stdout}\n{completed.stderr}")
        line = next((l for l in completed.stdout.splitlines() if l.startswith("RESULT ")), None)
        if completed.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({log_name}, exit {completed.returncode}): "
                               f"{(completed.stderr or completed.stdout).strip()[:500]}")
        return {k: float(v) for k, v in (item.split("=", 1) for item in line.split()[1:])}

    def measure(self, *, key: str, label: str, url: str, script: str, connections: int, env: dict,
                server_root: int, unit: str = "req", db_pids: Callable[[], list[int]] | None = None,
                watch: dict[str, int] | None = None, before_run: Callable[[], None] | None = None,
                note: str = "") -> Point:
        """A warm-up (discarded), then `runs` measured runs of `duration` seconds."""
        if self.warmup > 0:
            self.run_wrk(url, script, connections, self.warmup, env, f"{key}-c{connections}-warmup", before_run)
        runs = []
        for i in range(1, self.runs + 1):
            if before_run:
                before_run()
            busy = self.quiet_enough()
            db_before = {pid: procs.pids_cpu_seconds([pid]) for pid in db_pids()} if db_pids else None
            cpu0 = procs.tree_cpu(server_root)
            watched0 = {name: procs.tree_cpu_seconds(pid) for name, pid in (watch or {}).items()}
            result = self.run_wrk(url, script, connections, self.duration, env, f"{key}-c{connections}-run{i}")
            cpu1 = procs.tree_cpu(server_root)
            db_cpu = None
            if db_before is not None:
                # A backend that appeared during the run counts from zero (it started during it).
                db_cpu = sum(procs.pids_cpu_seconds([pid]) - db_before.get(pid, 0.0) for pid in db_pids())
            watched = {name: procs.tree_cpu_seconds(pid) - watched0[name] for name, pid in (watch or {}).items()}
            runs.append(Run(result, sum(cpu1) - sum(cpu0), cpu1[1] - cpu0[1], db_cpu, busy, watched))
            if not self.quiet:
                r = runs[-1]
                eff = f"{r.per_cpu_s:.0f}" if r.per_cpu_s else "n/a"
                print(f"#   {label} c={connections} run {i}: {r.ok_per_s:.0f} {unit}/s, {eff} per server CPU-s, "
                      f"p99 {result.get('p99_ms', 0):.1f} ms, errors {int(result.get('non2xx', 0) + result.get('sock_errors', 0))}"
                      f", machine busy before {busy:.0f}%", flush=True)
        return Point(key, label, unit, connections, runs, note)
