"""The benchmark run: start the stack, prepare, warm up, measure every scenario of issue 6, take the
baselines (RSA ceiling, the peer), profile, stop everything by PID, print one table and write
bench/RESULTS.md. `python3 -m bench --help` lists the options; `--smoke` is CI's seconds-long
check that the runner itself works (it asserts nothing about speed)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from . import procs, report
from .load import Load, Point, ensure_wrk
from .prepare import (
    API_SCOPE,
    FLOW_SCOPE,
    REDIRECT_URI,
    Browser,
    create_deployment,
    prepare,
    write_pkce_file,
)
from .profile import Profile, ensure_py_spy, record, summarise
from .stack import ROOT, Stack, close_stack, free_port, open_stack

SHARED_BENCH = Path(os.environ.get("AUTHSERVER_BENCH_SHARED", ROOT.parent / "shared" / "bench"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="CI mode: every scenario once for 1 s, no peer, no profiler, no pinned run; "
                             "writes no RESULTS.md; fails only if the runner is broken")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per point; the median is quoted (3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of discarded warm-up per point (3)")
    parser.add_argument("--store", choices=["auto", "postgres", "sqlite"], default="auto",
                        help="auto: PostgreSQL and Redis when reachable, else SQLite and memory")
    parser.add_argument("--no-peer", action="store_true", help="skip the node-oidc-provider baseline")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")
    parser.add_argument("--no-pinned", action="store_true",
                        help="skip the like-for-like run (1 worker on CPU 0, load.sh's wrk on CPU 1)")
    parser.add_argument("--profile-seconds", type=int, default=12, help="py-spy recording per profile (12)")
    parser.add_argument("--quiet-wait", type=float, default=20,
                        help="before each run, wait up to this many seconds for the machine to be quiet (20)")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the results (default bench/RESULTS.md; none with --smoke)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, raw wrk output)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.duration, args.warmup = 1, 1, 0
        args.no_peer = args.no_profile = args.no_pinned = True
    elif args.output is None:
        args.output = ROOT / "bench" / "RESULTS.md"
    if args.runs < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--runs and --duration must be at least 1, --warmup at least 0")
    return args


@dataclass
class External:
    """A row measured by ../shared/bench/load.sh (ours pinned, or the peer)."""

    label: str
    conc: int
    rate: float
    runs: str
    p50: float
    p99: float
    errors: int
    per_cpu_s: float | None
    rss_mb: float | None
    busy: str


@dataclass
class Results:
    args: argparse.Namespace
    started: dt.datetime
    stack_description: str = ""
    workers: int = 0
    api_workers: int = 0
    points: dict[str, Point] = field(default_factory=dict)
    pinned: dict[int, External] = field(default_factory=dict)
    peer: dict[str, External] = field(default_factory=dict)
    peer_meta: str = ""
    peer_error: str | None = None
    rsa: list[dict] = field(default_factory=list)
    memory: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    auth_cpu_during_api: dict[str, float] = field(default_factory=dict)
    # key → (usage reports the server received during the scenario, its wall seconds, API workers)
    usage_reports: dict[str, tuple[int, float]] = field(default_factory=dict)
    usage_interval: float = 10.0
    profiles: list[Profile] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    steal_s: float = 0.0

    def rsa_per_core(self) -> float | None:
        values = [r["signatures"] / r["cpu_s"] for r in self.rsa if r.get("cpu_s")]
        return statistics.median(values) if values else None

    def rsa_ms(self, op: str) -> float | None:
        """Median CPU milliseconds of one RS256 signature ("sign") or verification ("verify")."""
        count, cpu = ("signatures", "cpu_s") if op == "sign" else ("verifications", "verify_cpu_s")
        values = [1000 * r[cpu] / r[count] for r in self.rsa if r.get(count)]
        return statistics.median(values) if values else None


def _stop_on_signals() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    _stop_on_signals()
    t0 = time.monotonic()
    steal0 = procs.steal_seconds()
    results = Results(args, dt.datetime.now(dt.UTC))
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="authserver-bench-"))
    (workdir / "wrk").mkdir()
    cores = os.cpu_count() or 1
    load = Load(wrk, args.runs, args.duration, args.warmup, workdir / "wrk", quiet=args.smoke,
                busy_seconds=0.1 if args.smoke else 0.5, quiet_wait=0 if args.smoke else args.quiet_wait)
    print(f"# authserver bench ({'smoke' if args.smoke else 'full'}): {args.runs} run(s) x {args.duration} s, "
          f"warm-up {args.warmup} s; work folder {workdir}", flush=True)
    stack: Stack | None = None
    failed = False
    try:
        stack = open_stack(workdir, args.store)
        results.stack_description = stack.describe()
        print(f"# {results.stack_description}", flush=True)
        results.versions = report.versions(stack, wrk)
        run_stack(stack, load, results, cores, workdir)
    except KeyboardInterrupt:
        print("# interrupted: stopping everything", file=sys.stderr)
        failed = True
    except Exception as exc:  # noqa: BLE001 - whatever broke, stop everything (finally) and say it in one line
        print(f"bench: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        failed = True
    finally:
        if stack is not None:
            close_stack(stack)
    if not failed and not args.smoke:
        try:
            baselines(results, workdir)
        except KeyboardInterrupt:
            print("# interrupted", file=sys.stderr)
            failed = True
    results.seconds = time.monotonic() - t0
    results.steal_s = procs.steal_seconds() - steal0
    if results.points:
        text = report.render(results)
        print()
        print(report.table(results))
        print()
        print(report.targets_summary(results))
        if args.output and not failed:
            args.output.write_text(text)
            print(f"# wrote {args.output}")
    if args.keep or failed:
        print(f"# logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"# took {results.seconds:.0f} s")
    if failed:
        return 1
    broken = [p.label for p in results.points.values() if sum(r.ok for r in p.runs) == 0]
    if args.smoke:  # each scenario is one check that the runner works for it
        print(f"smoke: {len(results.points) - len(broken)} passed, {len(broken)} failed")
    if broken:
        print(f"bench: error: nothing succeeded in: {', '.join(broken)} (see the wrk logs)", file=sys.stderr)
        return 1
    return 0


def run_stack(stack: Stack, load: Load, results: Results, cores: int, workdir: Path) -> None:
    args = results.args
    deployment = create_deployment(stack)
    results.workers = cores
    auth = stack.start_auth(workers=cores)
    results.commands.append(f"authserver serve --host 127.0.0.1 --port {stack.auth_port} --workers {cores} "
                            "(granian, 4 threads per worker)")
    prepared, browser = prepare(stack, deployment)
    results.api_workers = cores if stack.redis_url else 1
    api = stack.start_api(results.api_workers, *prepared.api_client, wait=False)
    unmetered = stack.start_api(results.api_workers, None, None, wait=False, name="api-unmetered", port=free_port())
    bare = stack.start_bare_api(results.api_workers, prepared.jwt, wait=False)
    for service in (api, unmetered, bare):
        service.wait_healthy()
    results.commands.append(f"authserver api serve --workers {results.api_workers} "
                            "(AUTHSERVER_API_CLIENT_ID/SECRET set: metering and API keys on)")
    results.commands.append(f"authserver api serve --workers {results.api_workers} "
                            "(without AUTHSERVER_API_CLIENT_ID/SECRET: no usage metering)")
    results.commands.append(f"python -m bench.bare_api --workers {results.api_workers} "
                            "(the same app, GET /v1/users without require_auth and rate limiter)")
    # Idle memory: after start-up and the preparation requests, before any load.
    for name, service in (("authserver", auth), ("api", api), ("api-unmetered", unmetered), ("bare-api", bare)):
        results.memory.setdefault(name, {})["idle"] = service.worker_rss_mb()

    db = stack.db_backend_pids if stack.database_kind == "PostgreSQL" else None
    issuer = stack.issuer
    c_get = 32

    def point(key, label, url, script, conc, env, root, unit="req", **kw):
        results.commands.append(" ".join(load.wrk_command(url, script, conc, args.duration)))
        results.points[key] = load.measure(key=key, label=label, url=url, script=script, connections=conc, env=env,
                                           server_root=root, unit=unit, **kw)
        p = results.points[key]
        print(f"# {label} c={conc}: {report.num(p.rate)} {unit}/s, {report.num(p.per_cpu_s)} per server CPU-s, "
              f"p50 {report.num(p.latency('p50_ms'), 1)} ms, p99 {report.num(p.latency('p99_ms'), 1)} ms, "
              f"errors {p.errors}", flush=True)

    # 1. client_credentials
    cc_env = {"BENCH_METHOD": "POST", "BENCH_BODY": f"grant_type=client_credentials&scope={quote(API_SCOPE)}",
              "BENCH_AUTHORIZATION": f"Basic {prepared.cc_basic}"}
    for conc in (8, 32):
        point(f"cc{conc}", "client_credentials", issuer + "/oauth/token", "plain.lua", conc, cc_env, auth.pid,
              db_pids=db)

    # 2. the code flow with PKCE, whole
    pkce_file = write_pkce_file(workdir / "pkce.txt")
    authorize_path = "/oauth/authorize?" + browser.authorize_query(FLOW_SCOPE, "", "").split("&state=")[0]
    flow_env = {"BENCH_AUTHORIZE_PATH": authorize_path + "&code_challenge_method=S256",
                "BENCH_COOKIE": prepared.cookie, "BENCH_CLIENT_BASIC": prepared.app_basic,
                "BENCH_REDIRECT_URI": quote(REDIRECT_URI, safe=""), "BENCH_PKCE_FILE": str(pkce_file)}
    check_flow_request(issuer, flow_env)
    point("flow", "code flow + PKCE (authorize → token)", issuer + "/", "flow.lua", 8, flow_env, auth.pid,
          unit="flows", db_pids=db)

    # 3. refresh_token with rotation: with openid (new access, ID and refresh token), and without
    variants = [("refresh", "refresh_token, rotation (openid: + ID token)", FLOW_SCOPE),
                ("refresh_plain", "refresh_token, rotation (no openid)", API_SCOPE)]
    for key, label, scope in variants[:1] if args.smoke else variants:
        pool = RefreshPool(browser, workdir / f"{key}-tokens", scope, minimum=(2 if args.smoke else 3) * 8)
        env = {"BENCH_TOKENS_IN": str(pool.tokens_in), "BENCH_TOKENS_OUT": str(pool.tokens_out),
               "BENCH_CLIENT_BASIC": prepared.app_basic}
        point(key, label, issuer + "/", "refresh.lua", 8, env, auth.pid, db_pids=db, before_run=pool.refill)

    # 4. JWKS and discovery
    point("jwks", "GET /.well-known/jwks.json", issuer + "/.well-known/jwks.json", "plain.lua", c_get, {}, auth.pid)
    point("discovery", "GET /.well-known/openid-configuration", issuer + "/.well-known/openid-configuration",
          "plain.lua", c_get, {}, auth.pid)
    results.memory["authserver"]["after load"] = auth.worker_rss_mb()

    # 5. the sample API service: JWT, API key, and the bare view
    watch = {"authserver": auth.pid}
    for key, label, service, credential in (
            ("api_jwt", "API GET /v1/users, JWT", api, prepared.jwt),
            ("api_key", "API GET /v1/users, API key", api, prepared.api_key),
            ("api_jwt_unmetered", "API GET /v1/users, JWT, usage metering off", unmetered, prepared.jwt),
            ("api_bare", "API GET /v1/users, no auth, no rate limit", bare, None)):
        env = {"BENCH_AUTHORIZATION": f"Bearer {credential}"} if credential else {}
        reports0, t0 = stack.usage_batches(), time.monotonic()
        point(key, label, service.url + "/v1/users", "plain.lua", c_get, env, service.pid, watch=watch)
        reports1, t1 = stack.usage_batches(), time.monotonic()
        if reports0 is not None and reports1 is not None:
            results.usage_reports[key] = (reports1 - reports0, t1 - t0)
        p = results.points[key]
        results.auth_cpu_during_api[key] = sum(r.other_cpu.get("authserver", 0.0) for r in p.runs)
    results.memory["api"]["after load"] = api.worker_rss_mb()
    results.memory["api-unmetered"]["after load"] = unmetered.worker_rss_mb()
    results.memory["bare-api"]["after load"] = bare.worker_rss_mb()

    # Where the time goes: py-spy on the token endpoint under client_credentials load, and on the
    # scenarios whose targets are not met.
    if not args.no_profile:
        profile_scenarios(stack, load, results, auth, api, cc_env, flow_env, prepared, browser, workdir)

    for service in (bare, unmetered, api):
        stack.stop_service(service)

    # Like for like with the peer: one worker pinned to CPU 0, the same load.sh with wrk on CPU 1.
    if not args.no_pinned:
        stack.stop_service(auth)
        pinned_run(stack, results, prepared, workdir)


class RefreshPool:
    """Fresh refresh tokens for refresh.lua: the tokens a run left unused, topped up with new
    ones (whole code flows) before each run, so that no token is ever presented twice."""

    def __init__(self, browser: Browser, base: Path, scope: str, minimum: int):
        self.browser = browser
        self.scope = scope
        self.minimum = minimum
        self.tokens_in = base.with_suffix(".in")
        self.tokens_out = base.with_suffix(".out")

    def refill(self) -> None:
        left = self.tokens_out.read_text().split() if self.tokens_out.exists() else []
        fresh = self.browser.refresh_tokens(max(0, self.minimum - len(left)), self.scope)
        self.tokens_in.write_text("".join(t + "\n" for t in left + fresh))
        self.tokens_out.unlink(missing_ok=True)


def check_flow_request(issuer: str, env: dict) -> None:
    """One authorize request exactly as flow.lua sends it must redirect with a code."""
    import requests

    with open(env["BENCH_PKCE_FILE"]) as f:
        challenge = f.readline().split()[1]
    answer = requests.get(issuer + env["BENCH_AUTHORIZE_PATH"] + f"&state=1&code_challenge={challenge}",
                          headers={"Cookie": env["BENCH_COOKIE"], "User-Agent": "authserver-bench"},
                          allow_redirects=False, timeout=10)
    if answer.status_code != 302 or "code=" not in answer.headers.get("Location", ""):
        raise RuntimeError(f"the flow's authorize request does not redirect with a code: {answer.status_code} "
                           f"{answer.headers.get('Location')}")
    if "Set-Cookie" in answer.headers:
        print("# note: /oauth/authorize answers with Set-Cookie on every flow", file=sys.stderr)


def profile_scenarios(stack, load: Load, results: Results, auth, api, cc_env, flow_env, prepared, browser,
                      workdir: Path) -> None:
    py_spy = ensure_py_spy()
    if py_spy is None:
        results.profiles.append(Profile("client_credentials", error="py-spy could not be installed"))
        return
    seconds = results.args.profile_seconds
    issuer = stack.issuer
    # (scenario, measured point, RSA work per unit outside the GIL, load)
    wanted = [("client_credentials", "cc8", "sign", 1, issuer + "/oauth/token", "plain.lua", 8, cc_env, auth, None)]
    verdicts = report.verdicts(results)
    if not verdicts["flow"][0]:
        wanted.append(("code flow", "flow", "sign", 2, issuer + "/", "flow.lua", 8, flow_env, auth, None))
    if not verdicts["refresh"][0]:
        pool = RefreshPool(browser, workdir / "profile-refresh-tokens", FLOW_SCOPE, minimum=3 * 8)
        wanted.append(("refresh_token", "refresh", "sign", 2, issuer + "/", "refresh.lua", 8,
                       {"BENCH_TOKENS_IN": str(pool.tokens_in), "BENCH_TOKENS_OUT": str(pool.tokens_out),
                        "BENCH_CLIENT_BASIC": prepared.app_basic}, auth, pool.refill))
    if not verdicts["jwks"][0]:
        wanted.append(("discovery", "discovery", "", 0, issuer + "/.well-known/openid-configuration", "plain.lua", 32,
                       {}, auth, None))
    if not verdicts["api"][0]:
        jwt = {"BENCH_AUTHORIZATION": f"Bearer {prepared.jwt}"}
        unmetered = stack_service(stack, "api-unmetered")
        wanted.append(("API with a JWT, metering off", "api_jwt_unmetered", "verify", 1, unmetered.url + "/v1/users",
                       "plain.lua", 32, jwt, unmetered, None))
        wanted.append(("API with a JWT, metering on", "api_jwt", "verify", 1, api.url + "/v1/users", "plain.lua", 32,
                       jwt, api, None))
        wanted.append(("API, bare view", "api_bare", "", 0, results_bare_url(stack) + "/v1/users", "plain.lua", 32,
                       {}, stack_service(stack, "bare-api"), None))
    for name, key, rsa_op, rsa_count, url, script, conc, env, service, before in wanted:
        out = workdir / f"profile-{name.replace(' ', '_').replace(',', '')}.txt"
        if before:
            before()
        recorder = record(py_spy, service.pid, seconds, out)
        time.sleep(1.0)  # py-spy attaches to every worker first
        try:
            load.run_wrk(url, script, conc, seconds, env, f"profile-{name.replace(' ', '_')}")
        finally:
            try:
                _, err = recorder.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                procs.stop(recorder)
                err = "py-spy did not finish"
        profile = summarise(out, name)
        profile.point_key, profile.rsa_op, profile.rsa_count = key, rsa_op, rsa_count
        if profile.error:
            profile.error += f" ({(err or '').strip()[-300:]})"
        results.profiles.append(profile)
        print(f"# profiled {name}: {profile.samples} samples"
              + (f" ({profile.error})" if profile.error else ""), flush=True)
    results.commands.append(f"py-spy record --pid <server main process> --subprocesses --gil --rate 200 "
                            f"--duration {seconds} --format raw   (under the same wrk load, not measured)")


def results_bare_url(stack: Stack) -> str:
    return stack_service(stack, "bare-api").url


def stack_service(stack: Stack, name: str):
    return next(s for s in stack.services if s.name == name)


def pinned_run(stack: Stack, results: Results, prepared, workdir: Path) -> None:
    """load.sh (../shared/bench) against our token endpoint, exactly as the peer is measured."""
    load_sh = SHARED_BENCH / "load.sh"
    if not load_sh.exists():
        print(f"# {load_sh} not found: no like-for-like run", file=sys.stderr)
        return
    port = free_port()
    service = stack.start_auth(workers=1, name="authserver-pinned", cpus="0", port=port)
    try:
        pids = " ".join(str(p) for p in procs.tree(service.pid))
        out = workdir / "pinned"
        env = {**os.environ, "LABEL": "authserver 1 worker pinned", "OUT": str(out), "SERVER_PIDS": pids,
               "WRK_CPUS": "1", "CONCURRENCY": "8 32", "RUNS": str(results.args.runs),
               "DURATION": str(results.args.duration), "WARMUP": str(results.args.warmup), "QUIET_WAIT": "10"}
        command = [str(load_sh), f"{service.url}/oauth/token", *prepared.cc_client, API_SCOPE]
        results.commands.append(
            f"taskset -c 0 authserver serve --workers 1; LABEL=… SERVER_PIDS=<master+worker> WRK_CPUS=1 "
            f"CONCURRENCY='8 32' RUNS={results.args.runs} DURATION={results.args.duration} "
            f"WARMUP={results.args.warmup} QUIET_WAIT=10 ../shared/bench/load.sh URL CLIENT_ID CLIENT_SECRET {API_SCOPE}")
        print("# like for like: 1 worker on CPU 0, ../shared/bench/load.sh with wrk on CPU 1", flush=True)
        completed = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=2 * (results.args.warmup + results.args.runs * (results.args.duration + 12)) + 120,
                                   check=False)
        (workdir / "pinned.log").write_text(completed.stdout + completed.stderr)
        for row in parse_load_rows(completed.stdout):
            results.pinned[row.conc] = row
        results.memory["authserver (1 worker, pinned)"] = {"after load": service.worker_rss_mb()}
        if not results.pinned:
            print(f"# load.sh gave no rows: {completed.stderr.strip()[-500:]}", file=sys.stderr)
    finally:
        stack.stop_service(service)


def parse_load_rows(text: str) -> list[External]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 14 or not cells[2].isdigit():
            continue
        label, _mode, conc, rate, runs, p50, _p90, p99, _p999, _max, errors, eff, rss, busy = cells

        def f(value):
            try:
                return float(value)
            except ValueError:
                return None

        rows.append(External(label, int(conc), f(rate) or 0.0, runs, f(p50) or 0.0, f(p99) or 0.0, int(errors),
                             f(eff), f(rss), busy))
    return rows


def baselines(results: Results, workdir: Path) -> None:
    """With our stack stopped: the RSA ceiling, then the peer."""
    print("# RSA-2048 ceiling: one process pinned to CPU 1", flush=True)
    for _ in range(max(3, results.args.runs)):
        completed = subprocess.run([sys.executable, "-m", "bench.rsa_ceiling", "--seconds", "3", "--cpu", "1"],
                                   capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
        if completed.returncode == 0:
            results.rsa.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    results.commands.append("python -m bench.rsa_ceiling --seconds 3 --cpu 1   (x3, median of signatures per CPU-second)")
    print(f"#   {report.num(results.rsa_per_core())} RS256 signatures per CPU-second", flush=True)
    if results.args.no_peer:
        return
    script = SHARED_BENCH / "peer-oidc-provider.sh"
    if not script.exists():
        results.peer_error = f"{script} not found"
        return
    out = workdir / "peer"
    env = {**os.environ, "OUT": str(out), "RUNS": str(results.args.runs), "DURATION": str(results.args.duration),
           "DURATION_GET": str(results.args.duration), "WARMUP": str(results.args.warmup), "QUIET_WAIT": "10"}
    results.commands.append(f"OUT=… RUNS={results.args.runs} DURATION={results.args.duration} "
                            f"DURATION_GET={results.args.duration} WARMUP={results.args.warmup} QUIET_WAIT=10 "
                            "../shared/bench/peer-oidc-provider.sh")
    print("# the peer: ../shared/bench/peer-oidc-provider.sh (node-oidc-provider, 1 process on CPU 0, wrk on CPU 1)",
          flush=True)
    try:
        completed = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=1800,
                                   check=False)
    except subprocess.TimeoutExpired:
        results.peer_error = "peer-oidc-provider.sh took more than 30 minutes"
        return
    (workdir / "peer.log").write_text(completed.stdout + completed.stderr)
    summary = out / "summary.md"
    if not summary.exists():
        results.peer_error = f"peer-oidc-provider.sh exited {completed.returncode}: {completed.stderr.strip()[-400:]}"
        return
    for row in parse_load_rows(summary.read_text()):
        kind = "discovery" if row.label.endswith("discovery") else "jwks" if row.label.endswith("jwks") else f"cc{row.conc}"
        results.peer[kind] = row
    meta = out / "meta.txt"
    results.peer_meta = meta.read_text() if meta.exists() else ""
    if completed.returncode != 0:
        results.peer_error = f"peer-oidc-provider.sh exited {completed.returncode} (rows kept)"
