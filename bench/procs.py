"""Processes the bench starts and what /proc says about them: CPU seconds of a process tree, RSS
per process, whole-machine busy share. Everything the bench starts is stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    return text[text.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        if _stat_fields(current) is None:
            continue
        pids.append(current)
        todo += children(current)
    return pids


def tree_cpu(root: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process tree: every live process (all its threads), plus
    the root's reaped children (cutime/cstime), so that a worker restarted mid-run still counts."""
    user = system = 0
    for pid in tree(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the ')': state is field 3 of stat, so utime (14) is index 11 here, stime 12,
        # cutime 13, cstime 14.
        user += int(fields[11])
        system += int(fields[12])
        if pid == root:
            user += int(fields[13])
            system += int(fields[14])
    return user / TICK, system / TICK


def tree_cpu_seconds(root: int) -> float:
    return sum(tree_cpu(root))


def pids_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def busy_percent(seconds: float = 0.5) -> float:
    """Share of the whole machine's CPU time spent busy over `seconds` (other load shows here)."""

    def sample():
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in parts]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values[:8]) - idle, idle

    busy0, idle0 = sample()
    time.sleep(seconds)
    busy1, idle1 = sample()
    total = (busy1 - busy0) + (idle1 - idle0)
    return 100.0 * (busy1 - busy0) / total if total else 0.0


def steal_seconds() -> float:
    values = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(values[8]) / TICK


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to the PID we started (granian: graceful stop), then SIGKILL to it and to any
    descendant still alive (by PID, as recorded just before)."""
    if process.poll() is not None:
        return
    descendants = [(pid, start_time(pid)) for pid in tree(process.pid) if pid != process.pid]
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid, started in descendants:
        if started is not None and start_time(pid) == started:  # the same process, not a reused PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None
