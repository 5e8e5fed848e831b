"""Where the server's time goes: py-spy (a sampling profiler, outside the server's process) records
every worker of a server we started while wrk drives a scenario.

It samples in `--gil` mode: only the thread holding the GIL, i.e. Python code running. Two
reasons: py-spy cannot tell idle threads here (waiting threads would show up as
psycopg's `wait`, `select`, `queue.get`), and the threads waiting for the GIL would be counted
where they stand. What runs with the GIL released is accounted for separately, by measurement:
the kernel's share from /proc (system CPU), and RSA from the ceiling measured in the same run
(`cryptography` releases the GIL while it signs or verifies).

The samples are summed up by layer (the package of the innermost frame), by function, and as
inclusive shares of a few markers (any frame of the stack).

py-spy is a bench-only tool: installed with pip into a cache folder (never into the project or
its venv) the first time a full run needs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PY_SPY_VERSION = "0.4.3"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "authserver-bench"

# (layer, pattern on the frame's file path or name), first match wins, innermost frame first.
def _pkg(*names: str) -> re.Pattern:
    return re.compile(r"(^|/)(" + "|".join(names) + r")/")


LAYERS = [
    ("cryptography (Python side)", _pkg("cryptography")),
    ("joserfc (JWT encoding, JWS)", _pkg("joserfc")),
    ("Authlib (grants, client auth, request objects)", _pkg("authlib")),
    ("SQLAlchemy (ORM, Core, pool)", _pkg("sqlalchemy")),
    ("psycopg (Python side)", _pkg("psycopg", "psycopg_binary", "psycopg_pool")),
    ("sqlite3", _pkg("sqlite3")),
    ("redis-py / limits (rate-limit counters)", _pkg("redis", "limits")),
    ("Flask / Werkzeug / Flask-Login / Jinja", _pkg("flask", "werkzeug", "jinja2", "flask_login", "flask_wtf",
                                                    "wtforms", "itsdangerous", "markupsafe", "blinker")),
    ("granian (WSGI glue in Python; its HTTP work in Rust is not sampled)", _pkg("granian")),
    ("authserver (our code)", _pkg("authserver", "bench")),
    ("stdlib json", _pkg("json")),
    ("stdlib threading / selectors / queue", re.compile(r"^(threading|selectors|queue|socket|ssl)\.py$|(^|/)concurrent/")),
    ("stdlib logging", _pkg("logging")),
    ("stdlib other (urllib, http, random, abc, …)", re.compile(r".")),
]
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def ensure_py_spy() -> Path | None:
    """py-spy from PyPI into ~/.cache/authserver-bench (pip, pinned); None if that fails."""
    target = CACHE / f"py-spy-{PY_SPY_VERSION}"
    binary = target / "bin" / "py-spy"
    if binary.exists():
        return binary
    print(f"# installing py-spy {PY_SPY_VERSION} into {target} (bench-only) …", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             "--target", str(target), f"py-spy=={PY_SPY_VERSION}"],
                            capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not binary.exists():
        print(f"# py-spy could not be installed: {result.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return binary


def record(py_spy: Path, pid: int, seconds: int, output: Path, rate: int = 200) -> subprocess.Popen:
    """Start recording the server process `pid` and its workers (returns at once)."""
    return subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--gil",
                             "--duration", str(seconds), "--rate", str(rate), "--format", "raw", "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _layer(frame: str) -> str:
    match = FRAME.match(frame)
    path = match.group("file") if match else frame
    path = re.sub(r"^.*?(site-packages|lib/python3\.\d+)/", "", path)
    for name, pattern in LAYERS:
        if pattern.search(path):
            return name
    return LAYERS[-1][0]


def _short(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "lib/python3", "/work/", "/tmp/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    path = re.sub(r"^[^/]*\.\d+/", "", path)  # "11/json/…" from lib/python3.11/
    return f"{match.group('func')} ({path})"


@dataclass
class Profile:
    scenario: str
    point_key: str = ""  # the measured point whose CPU per unit the shares divide
    rsa_op: str = ""  # "sign" or "verify": the RSA work each unit does outside the GIL
    rsa_count: int = 0  # how many of them per unit
    samples: int = 0
    by_layer: Counter = field(default_factory=Counter)
    by_function: Counter = field(default_factory=Counter)
    inclusive: Counter = field(default_factory=Counter)
    error: str | None = None

    def share(self, counter: Counter, key: str) -> float:
        return 100.0 * counter.get(key, 0) / self.samples if self.samples else 0.0

    def top_layers(self, n: int = 8) -> list[tuple[str, float]]:
        return [(k, self.share(self.by_layer, k)) for k, _ in self.by_layer.most_common(n)]

    def top_functions(self, n: int = 12) -> list[tuple[str, float]]:
        return [(k, self.share(self.by_function, k)) for k, _ in self.by_function.most_common(n)]


# Inclusive markers: the share of samples with at least one frame matching (a frame reads
# "Class.method (package/module.py:line)"). None: samples outside the Flask app (the WSGI server's own work).
MARKERS = [
    ("inside the Flask app (Flask.wsgi_app)", re.compile(r"^Flask\.wsgi_app \(flask/")),
    ("outside the Flask app (the WSGI server's Python side)", None),
    ("the token endpoint view (web/oauth.py token)", re.compile(r"^token \(authserver/web/oauth\.py")),
    ("the authorize view (web/oauth.py authorize)", re.compile(r"^authorize \(authserver/web/oauth\.py")),
    ("client authentication (AuthServer.authenticate_client)", re.compile(r"^AuthServer\.authenticate_client \(")),
    ("TokenSigner.sign (claims → JWS, Python side)", re.compile(r"^TokenSigner\.sign \(")),
    ("any SQLAlchemy frame", re.compile(r"\(sqlalchemy/")),
    ("SQLAlchemy pool pre-ping (a SELECT 1 at each checkout)", re.compile(r"^DefaultDialect\._do_ping_w_event \(")),
    ("SQLAlchemy transaction end (rollback / commit, session close)",
     re.compile(r"^(SessionTransaction\.(close|commit|rollback)|Session\.(commit|close|remove)) \(")),
    ("any Authlib frame", re.compile(r"\(authlib/")),
    ("any joserfc frame", re.compile(r"\(joserfc/")),
    ("Flask-Login (session user)", re.compile(r"\(flask_login/")),
    ("require_auth (token / API key check)", re.compile(r"wrapper \(authserver/resource/flask\.py")),
    ("TokenVerifier.verify (JWT checks)", re.compile(r"^TokenVerifier\.verify \(")),
    ("RateLimiter.hit (rate limit, Redis round trips)", re.compile(r"^RateLimiter\.hit \(")),
    ("API usage flusher (UsageMeter.flush → POST /v1/usage)", re.compile(r"^UsageMeter\.(flush|_send|_run) \(")),
    ("usage reports received (report_usage → POST /v1/usage)", re.compile(r"^report_usage \(authserver/")),
]


def summarise(path: Path, scenario: str) -> Profile:
    profile = Profile(scenario)
    if not path.exists():
        profile.error = "no profile written"
        return profile
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        # Idle threads show up only when they run (py-spy skips idle threads by default).
        if not frames:
            continue
        n = int(count)
        profile.samples += n
        leaf = frames[-1]
        profile.by_layer[_layer(leaf)] += n
        profile.by_function[_short(leaf)] += n
        app_seen = any(MARKERS[0][1].search(f) for f in frames)
        for name, pattern in MARKERS:
            if pattern is None:
                if not app_seen:
                    profile.inclusive[name] += n
            elif any(pattern.search(f) for f in frames):
                profile.inclusive[name] += n
    if not profile.samples:
        profile.error = "no samples"
    return profile
