"""The table, the targets of issue 6 (met / not met, with what limits them), and bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .stack import ROOT

# Targets of issue 6: (minimum, aim).
FLOW_TARGET = (150, 250)
REFRESH_TARGET = (240, 400)
API_COST_TARGET = (15.0, 10.0)  # % of the bare view's throughput, at most
GET_TARGET = 1500
P99_TARGET_MS = 40.0
RSS_TARGET_MB = 100.0
PEER_TARGET = (1.0, 1.5)


def num(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def versions(stack, wrk: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "kernel": platform.release()}
    for package in ("Flask", "Werkzeug", "Authlib", "joserfc", "SQLAlchemy", "granian", "cryptography", "psycopg",
                    "redis", "limits"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        found["OpenSSL"] = backend.openssl_version_text().removeprefix("OpenSSL ")
    except (ImportError, AttributeError):  # the backend module moved between releases
        found["OpenSSL"] = "n/a"
    found["wrk"] = (_first_line([wrk, "--version"]).split() + ["?", "?"])[1]  # "wrk debian/4.1.0-3+b2 [epoll] …"
    found["node"] = _first_line(["node", "--version"])
    if stack.database_kind == "PostgreSQL":
        import psycopg

        with psycopg.connect(stack.postgres_admin_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
            found["PostgreSQL"] = conn.execute("SHOW server_version").fetchone()[0]
    else:
        import sqlite3

        found["SQLite"] = sqlite3.sqlite_version
    if stack.redis_url:
        import redis

        client = redis.Redis.from_url(stack.redis_url, socket_timeout=2)
        found["Redis"] = client.info("server").get("redis_version", "?")
        client.close()
    found["authserver commit"] = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    if dirty:
        found["authserver commit"] += " (with uncommitted changes)"
    return found


def _first_line(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        return ((out.stdout or out.stderr).strip().splitlines() or [""])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores{memory}, Linux {platform.release()}"


# -- the table ---------------------------------------------------------------------------------

HEADER = ("| scenario | conc | rate /s | p50 ms | p99 ms | per server CPU-s | + PG backends | server CPU ms each "
          "(kernel) | errors | rates of the runs | machine busy % |")
RULE = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"


def table(results) -> str:
    rows = [HEADER, RULE]
    for p in results.points.values():
        rows.append(f"| {p.label} ({p.unit}) | {p.concurrency} | {num(p.rate)} | {num(p.latency('p50_ms'), 2)} | "
                    f"{num(p.latency('p99_ms'), 2)} | **{num(p.per_cpu_s)}** | {num(p.per_cpu_s_with_db)} | "
                    f"{num(p.ms_per_unit(), 3)} ({num(p.ms_per_unit('sys'), 3)}) | "
                    f"{p.errors} | {' / '.join(num(r.ok_per_s) for r in p.runs)} | {num(p.busy)} |")
    for conc, row in sorted(results.pinned.items()):
        rows.append(f"| client_credentials, 1 worker on CPU 0 (load.sh) | {conc} | {num(row.rate)} | "
                    f"{num(row.p50, 2)} | {num(row.p99, 2)} | **{num(row.per_cpu_s)}** | | "
                    f"{num(1000 / row.per_cpu_s if row.per_cpu_s else None, 3)} | {row.errors} | {row.runs} | "
                    f"{row.busy} |")
    for key, label in (("cc8", "client_credentials"), ("cc32", "client_credentials"), ("jwks", "JWKS"),
                       ("discovery", "discovery")):
        row = results.peer.get(key)
        if row:
            rows.append(f"| peer: node-oidc-provider {label}, 1 process on CPU 0 (load.sh) | {row.conc} | "
                        f"{num(row.rate)} | {num(row.p50, 2)} | {num(row.p99, 2)} | **{num(row.per_cpu_s)}** | | "
                        f"{num(1000 / row.per_cpu_s if row.per_cpu_s else None, 3)} | {row.errors} | {row.runs} | "
                        f"{row.busy} |")
    rsa = results.rsa_per_core()
    if rsa:
        runs = " / ".join(num(r["signatures"] / r["wall_s"]) for r in results.rsa)
        wall = sorted(r["signatures"] / r["wall_s"] for r in results.rsa)[len(results.rsa) // 2]
        rows.append(f"| ceiling: RS256 signatures (RSA-2048, cryptography), 1 process on 1 core | - | "
                    f"{num(wall)} | | | **{num(rsa)}** | | {1000 / rsa:.3f} | 0 | {runs} | |")
    return "\n".join(rows)


def memory_table(results) -> str:
    rows = ["| service | workers | RSS per worker, idle (MB) | RSS per worker, after load (MB) |", "|---|---:|---|---|"]
    for name, samples in results.memory.items():
        idle = samples.get("idle")
        after = samples.get("after load")
        count = len(after or idle or [])
        rows.append(f"| {name} | {count} | {', '.join(num(v) for v in idle) if idle else 'n/a'} | "
                    f"{', '.join(num(v) for v in after) if after else 'n/a'} |")
    return "\n".join(rows)


# -- ratios and targets ---------------------------------------------------------------------------

def ratio(a, b):
    return a / b if a is not None and b else None


BASELINE = ROOT / "bench" / "baseline.json"


def before_and_after(results) -> list[str]:
    """This run beside the figures of the run before the speed work (bench/baseline.json): absolute
    figures of two runs, so read the large changes, not the last 10 %."""
    if not BASELINE.exists():
        return []
    base = json.loads(BASELINE.read_text())
    rows = [(key, results.points[key].label, before, results.points[key].per_cpu_s)
            for key, before in base["per_cpu_s"].items() if key in results.points]
    rows += [(f"pinned{conc}", f"client_credentials c={conc}, 1 worker pinned (load.sh)", before, results.pinned[int(conc)].per_cpu_s)
             for conc, before in base["pinned_per_cpu_s"].items() if int(conc) in results.pinned]
    lines = ["## Before and after", "",
             (f"Per server CPU-s, the run before the speed work ({base['run']}; its table and profiles: "
              f"[{base['results']}]({base['results']})) and this run. The peer then: "
              + ", ".join(f"c={c} {v:,}" for c, v in base["peer_per_cpu_s"].items()) + "."), "",
             "| scenario | before | now | now / before |", "|---|---:|---:|---:|"]
    for key, label, before, now in rows:
        lines.append(f"| {label}{' c=' + key[2:] if key.startswith('cc') else ''} | {before:,} | {num(now)} | "
                     f"{num(ratio(now, before), 2)}× |")
    return lines + [""]


def ratios(results) -> list[tuple[str, str]]:
    out = []
    pts = results.points
    rsa = results.rsa_per_core()
    for conc in (8, 32):
        ours = pts.get(f"cc{conc}")
        peer = results.peer.get(f"cc{conc}")
        pinned = results.pinned.get(conc)
        if ours and peer:
            out.append((f"client_credentials c={conc}: ours (workers = cores) / peer, per server CPU-s",
                        num(ratio(ours.per_cpu_s, peer.per_cpu_s), 2)))
        if pinned and peer:
            out.append((f"client_credentials c={conc}: ours (1 worker pinned, load.sh) / peer (same shape)",
                        num(ratio(pinned.per_cpu_s, peer.per_cpu_s), 2)))
        if ours and rsa:
            out.append((f"client_credentials c={conc}: ours / RSA ceiling", num(ratio(ours.per_cpu_s, rsa), 2)))
        if peer and rsa:
            out.append((f"client_credentials c={conc}: peer / RSA ceiling", num(ratio(peer.per_cpu_s, rsa), 2)))
    if pts.get("cc8") and pts["cc8"].per_cpu_s:
        out.append(("server CPU per client_credentials token, c=8", f"{1000 / pts['cc8'].per_cpu_s:.2f} ms"))
    if rsa:
        out.append(("CPU per RS256 signature (ceiling)", f"{1000 / rsa:.2f} ms"))
    if pts.get("flow") and pts["flow"].per_cpu_s:
        out.append(("server CPU per whole code flow", f"{1000 / pts['flow'].per_cpu_s:.2f} ms"))
    for key in ("refresh", "refresh_plain"):
        if pts.get(key) and pts[key].per_cpu_s:
            out.append((f"server CPU per {pts[key].label}", f"{1000 / pts[key].per_cpu_s:.2f} ms"))
    bare = pts.get("api_bare")
    for key, label in (("api_jwt_unmetered", "JWT, metering off"), ("api_jwt", "JWT"), ("api_key", "API key")):
        p = pts.get(key)
        if p and bare:
            out.append((f"API with {label} / bare view, per API CPU-s", num(ratio(p.per_cpu_s, bare.per_cpu_s), 2)))
            out.append((f"API with {label} / bare view, requests/s", num(ratio(p.rate, bare.rate), 2)))
    for key in ("jwks", "discovery"):
        if pts.get(key) and results.peer.get(key):
            out.append((f"{key}: ours / peer, per server CPU-s",
                        num(ratio(pts[key].per_cpu_s, results.peer[key].per_cpu_s), 2)))
    return out


def _auth_cost(results, key):
    p, bare = results.points.get(key), results.points.get("api_bare")
    if not p or not bare or not p.per_cpu_s or not bare.per_cpu_s:
        return None, None
    return 100 * (1 - p.per_cpu_s / bare.per_cpu_s), 100 * (1 - p.rate / bare.rate) if bare.rate else None


def verdicts(results) -> dict[str, tuple[bool | None, str, str]]:
    """key → (met, target, measured)."""
    pts = results.points
    v: dict[str, tuple[bool | None, str, str]] = {}

    # client_credentials vs the peer: like for like (pinned, same load.sh) when measured, else production.
    cmp = []
    for conc in (8, 32):
        peer = results.peer.get(f"cc{conc}")
        ours = results.pinned.get(conc) or pts.get(f"cc{conc}")
        if peer and ours and ours.per_cpu_s and peer.per_cpu_s:
            cmp.append((conc, ours.per_cpu_s / peer.per_cpu_s, ours.per_cpu_s, peer.per_cpu_s))
    if cmp:
        met = all(r >= PEER_TARGET[0] for _, r, _, _ in cmp)
        shape = "1 worker pinned vs the peer pinned, same load.sh" if results.pinned else "workers = cores vs the peer"
        v["cc"] = (met, "≥ 1.0× the peer's tokens per server CPU-s (aim 1.5×)",
                   "; ".join(f"c={c}: {ours:,.0f} vs {peer:,.0f} = {r:.2f}×" for c, r, ours, peer in cmp) + f" ({shape})")
    else:
        v["cc"] = (None, "≥ 1.0× the peer (aim 1.5×)", "peer not measured" + (f": {results.peer_error}" if results.peer_error else ""))

    flow = pts.get("flow")
    v["flow"] = (flow.per_cpu_s >= FLOW_TARGET[0] if flow and flow.per_cpu_s else None,
                 f"≥ {FLOW_TARGET[0]} flows per server CPU-s (aim {FLOW_TARGET[1]})",
                 f"{num(flow.per_cpu_s if flow else None)} flows per server CPU-s")
    ref, plain = pts.get("refresh"), pts.get("refresh_plain")
    v["refresh"] = (ref.per_cpu_s >= REFRESH_TARGET[0] if ref and ref.per_cpu_s else None,
                    f"≥ {REFRESH_TARGET[0]} refreshes per server CPU-s (aim {REFRESH_TARGET[1]})",
                    (f"{num(ref.per_cpu_s if ref else None)} with openid (2 signatures); "
                    f"{num(plain.per_cpu_s if plain else None)} without openid (1 signature)"))
    jwks, disc = pts.get("jwks"), pts.get("discovery")
    get_ok = [p.per_cpu_s >= GET_TARGET for p in (jwks, disc) if p and p.per_cpu_s]
    v["jwks"] = (all(get_ok) if len(get_ok) == 2 else None, f"≥ {GET_TARGET:,} requests per server CPU-s each",
                 f"JWKS {num(jwks.per_cpu_s if jwks else None)}, discovery {num(disc.per_cpu_s if disc else None)}")
    # The auth layer proper (JWT verification + rate limiting): the API without usage metering,
    # against the bare view. As shipped (metering on) and with an API key: shown beside it.
    layer_cpu, layer_rps = _auth_cost(results, "api_jwt_unmetered")
    cost_cpu, cost_rps = _auth_cost(results, "api_jwt")
    key_cpu, key_rps = _auth_cost(results, "api_key")
    auth_cpu = results.auth_cpu_during_api.get("api_jwt_unmetered")
    jwt_requests = sum(r.ok for r in pts["api_jwt_unmetered"].runs) if pts.get("api_jwt_unmetered") else 0
    reports = results.usage_reports.get("api_jwt")
    expected = (results.api_workers / results.usage_interval) if results.api_workers else None
    reports_text = (f"; with metering on, usage reports (POST /v1/usage) received during the JWT scenario: "
                    f"{reports[0]:,} in {reports[1]:.0f} s ({reports[0] / reports[1]:.1f}/s, where one every "
                    f"{results.usage_interval:.0f} s per worker is {expected:.1f}/s)") \
        if reports and reports[1] and expected else ""
    flooding = bool(reports and reports[1] and expected and reports[0] / reports[1] > 2 * expected)
    v["api"] = ((layer_cpu <= API_COST_TARGET[0] and not flooding) if layer_cpu is not None else None,
                (f"auth layer (JWT verification + rate limiting) ≤ {API_COST_TARGET[0]:.0f} % of the bare view's "
                 f"throughput (aim {API_COST_TARGET[1]:.0f} %); no request to the server per JWT request"),
                (f"JWT, metering off: {num(layer_cpu, 1)} % per API CPU-s ({num(layer_rps, 1)} % in requests/s); "
                 f"as shipped, metering on: JWT {num(cost_cpu, 1)} % ({num(cost_rps, 1)} %), API key "
                 f"{num(key_cpu, 1)} % ({num(key_rps, 1)} %); authorization server CPU during the {jwt_requests:,} "
                 f"unmetered JWT requests: {num(auth_cpu * 1000 if auth_cpu is not None else None)} ms in all"
                 f"{reports_text}"))
    cc8 = pts.get("cc8")
    p99 = cc8.latency("p99_ms") if cc8 else None
    v["p99"] = (p99 <= P99_TARGET_MS if p99 is not None else None, f"p99 ≤ {P99_TARGET_MS:.0f} ms at c=8 (client_credentials)",
                f"{num(p99, 1)} ms (workers = cores, wrk on the same 2 cores)")
    after = [(name, max(s["after load"])) for name, s in results.memory.items() if s.get("after load")]
    worst = max(after, key=lambda x: x[1]) if after else None
    v["rss"] = (worst[1] <= RSS_TARGET_MB if worst else None, f"RSS per worker ≤ {RSS_TARGET_MB:.0f} MB after load",
                f"largest: {num(worst[1])} MB ({worst[0]})" if worst else "n/a")
    return v


TARGET_NAMES = {
    "cc": "1. client_credentials vs the peer",
    "flow": "2. code flow + PKCE",
    "refresh": "3. refresh_token with rotation",
    "api": "5. resource API: cost of the auth layer",
    "jwks": "4. JWKS and discovery",
    "p99": "p99 latency at c=8",
    "rss": "6. memory",
}


def mark(met) -> str:
    return "n/a" if met is None else "**met**" if met else "**not met**"


def targets_summary(results) -> str:
    rows = ["| target | wanted | measured | |", "|---|---|---|---|"]
    for key, (met, wanted, measured) in verdicts(results).items():
        rows.append(f"| {TARGET_NAMES[key]} | {wanted} | {measured} | {mark(met)} |")
    return "\n".join(rows)


# -- what limits the targets not met ---------------------------------------------------------------

def _profile(results, key):
    return next((p for p in results.profiles if p.point_key == key and not p.error), None)


KERNEL = "kernel (system CPU: sockets, epoll, futex / GIL hand-offs, loopback I/O)"


def decomposition(results, profile) -> list[tuple[str, float]] | None:
    """Server CPU per unit split into: the kernel (system CPU, /proc), RSA outside the GIL
    (count × the ceiling's cost, this run), and the Python code by layer (user CPU − RSA,
    divided as the GIL-held samples of py-spy)."""
    point = results.points.get(profile.point_key)
    if point is None or point.ms_per_unit() is None:
        return None
    total, kernel = point.ms_per_unit("all"), point.ms_per_unit("sys")
    user = total - kernel
    rsa = 0.0
    if profile.rsa_count and results.rsa_ms(profile.rsa_op):
        rsa = min(user, profile.rsa_count * results.rsa_ms(profile.rsa_op))
    python = user - rsa
    rows = [(KERNEL, kernel)]
    if profile.rsa_count:
        what = "signature" if profile.rsa_op == "sign" else "verification"
        rows.append(((f"RSA-2048 {what}{'s' if profile.rsa_count > 1 else ''} in OpenSSL, GIL released "
                     f"({profile.rsa_count} × {results.rsa_ms(profile.rsa_op) or 0:.3f} ms, the ceiling's cost)"), rsa))
    for layer, share in profile.top_layers(20):
        rows.append((f"Python: {layer}", python * share / 100))
    return rows


def _top_parts(rows, n=5) -> str:
    total = sum(ms for _, ms in rows)
    ranked = sorted(rows, key=lambda r: -r[1])[:n]
    return "; ".join(f"{name.split(' (')[0]} {ms:.2f} ms ({100 * ms / total:.0f} %)" for name, ms in ranked)


def limits_notes(results) -> list[str]:
    notes = []
    v = verdicts(results)
    pts = results.points
    sign_ms = results.rsa_ms("sign")

    def per_ms(key):
        p = pts.get(key)
        return p.ms_per_unit() if p else None

    def profile_text(key) -> str:
        prof = _profile(results, key)
        rows = decomposition(results, prof) if prof else None
        if not rows:
            return ""
        inc = prof.inclusive
        hot = ", ".join(f"{name} {prof.share(inc, name):.0f} %" for name, _ in inc.most_common(6))
        return (f" Where it goes (py-spy + /proc, see below): {_top_parts(rows)}. Of the Python time (GIL held): {hot}.")

    if v["cc"][0] is not True:
        text = (f"**client_credentials.** A token costs {num(per_ms('cc8'), 2)} ms of server CPU (c=8, workers = cores)"
                + (f", of which the one RSA signature it needs is {sign_ms:.2f} ms" if sign_ms else "") + "."
                + profile_text("cc8"))
        notes.append(text)
    for key, what in (("flow", ("A whole flow (authorize + token: two signatures, a code written and claimed, a "
                               "refresh token written)")),
                      ("refresh", ("A refresh with rotation (two signatures with openid; the old token claimed, "
                                  "the new one written)"))):
        if v[key][0] is False:
            p = pts.get(key)
            text = f"**{TARGET_NAMES[key][3:]}.** {what} costs {num(per_ms(key), 2)} ms of server CPU"
            if p and p.per_cpu_s_with_db:
                text += f" ({1000 / p.per_cpu_s_with_db:.2f} ms with the PostgreSQL backends' CPU)"
            notes.append(text + "." + profile_text(key))
    if v["api"][0] is False:
        text = (f"**API auth layer.** A request with a JWT costs {num(per_ms('api_jwt_unmetered'), 2)} ms of API CPU "
                f"with usage metering off, {num(per_ms('api_jwt'), 2)} ms with it on (as shipped), with an API key "
                f"{num(per_ms('api_key'), 2)} ms, against {num(per_ms('api_bare'), 2)} ms for the bare view."
                + profile_text("api_jwt_unmetered"))
        reports = results.usage_reports.get("api_jwt")
        if reports and reports[1] and reports[0] / reports[1] > 2 * results.api_workers / results.usage_interval:
            text += (f" And the API's usage metering does not wait its interval under sustained load: "
                     f"`UsageMeter.flush` (authserver/api/usage.py) sends batches until none is left, and with "
                     f"requests still arriving one always is, so each worker posts `/v1/usage` back to back "
                     f"({reports[0]:,} reports in {reports[1]:.0f} s instead of about "
                     f"{results.api_workers * reports[1] / results.usage_interval:.0f}). Each report costs the API worker "
                     f"an HTTP request from its flusher thread and the authorization server a client authentication "
                     f"and a transaction: a bug, reported, not worked around here.")
        notes.append(text)
    if v["jwks"][0] is False:
        notes.append(f"**JWKS and discovery.** {num(per_ms('jwks'), 3)} ms and {num(per_ms('discovery'), 3)} ms of "
                     "server CPU per GET, for bodies of a few hundred bytes to a few KB: this is the fixed cost of a "
                     "request through the WSGI server, Flask and our after-request hooks (discovery is rebuilt "
                     "with jsonify on every request, the JWKS re-serialised)." + profile_text("discovery"))
    if v["p99"][0] is False:
        notes.append("**p99 at c=8.** Eight connections on two workers of four threads each, on the two cores that "
                     "also run wrk: with the GIL a worker runs one request's Python at a time, so the tail is "
                     f"queueing for CPU; at {num(per_ms('cc8'), 2)} ms of CPU per token, waiting behind the other "
                     "requests of its worker and the time slices taken by wrk and the other worker adds up to tens "
                     "of ms. It falls with the CPU per token.")
    if v["rss"][0] is False:
        notes.append("**memory.** See the memory table for the workers above the target.")
    return notes


def render(results) -> str:
    a = results.args
    started = results.started.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        (f"Written by `python3 -m bench` ({'smoke' if a.smoke else 'full run'}) on {started}; the run took "
        f"{results.seconds / 60:.1f} minutes. Every figure below comes from this one run: medians of "
        f"{a.runs} runs of {a.duration} s each after a {a.warmup} s warm-up, and ratios between figures of this run."),
        "",
        (f"- **Machine:** {machine()}. CPU steal during the run (time the hypervisor gave to other virtual "
        f"machines): {results.steal_s:.0f} s, {_steal_share(results):.0f} % of the machine's time; figures drift with it "
        "(see *rates of the runs*)."),
        f"- **Stack:** {results.stack_description}.",
        (f"- **Server:** `authserver serve`, granian, {results.workers} workers (= cores) × 4 threads; "
        f"the sample API service (with usage metering, and without) and the bare view, {results.api_workers} "
        "worker(s) each. Everything on 127.0.0.1."),
        "- **Versions:** " + ", ".join(f"{k} {v}" for k, v in results.versions.items()) + ".",
    ]
    if results.peer_meta:
        lines.append("- **Peer:** " + " ".join(results.peer_meta.split()) + ".")
    if results.peer_error:
        lines.append(f"- **Peer:** not measured: {results.peer_error}.")
    lines += [
        "",
        "## Table",
        "",
        ("*per server CPU-s*: what the scenario completed (2xx answers; for the code flow, whole flows) per CPU "
        "second of the server's process tree (the server's main process and workers, all threads, from `/proc`), which "
        "holds on a shared machine. *+ PG backends*: the same, counting also the PostgreSQL backends serving the "
        "benchmark database. Latencies are per HTTP request. *machine busy %*: the whole machine just before a "
        "run (another job on the machine shows here)."),
        "",
        table(results),
        "",
        "## Ratios (same run)",
        "",
        "| ratio | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v} |" for k, v in ratios(results)]
    lines += ["", *before_and_after(results)]
    lines += ["## Targets of issue 6", "", targets_summary(results), ""]
    notes = limits_notes(results)
    if notes:
        lines += ["### What limits the targets not met", ""]
        lines += [f"- {n}" for n in notes]
        lines.append("")
    lines += ["## Where the time goes (py-spy)", "",
              ("py-spy samples the workers' thread holding the GIL (`--gil`, 200 Hz) during a separate wrk run of "
              "the same load (not a measured one). The server CPU of the measured runs is then split three ways: "
              "the kernel (system CPU from `/proc`), RSA (done by OpenSSL with the GIL released, so invisible to "
              "`--gil`: the number of operations times the ceiling's cost from this run), and the rest of the user "
              "CPU, the Python code, divided among layers as the samples are (the layer of the innermost frame)."),
              ""]
    if not results.profiles:
        lines += ["Not profiled in this run.", ""]
    for prof in results.profiles:
        point = results.points.get(prof.point_key)
        lines.append(f"### {prof.scenario}" + (f" ({point.label}, c={point.concurrency})" if point else ""))
        lines.append("")
        if prof.error:
            lines += [f"No profile: {prof.error}.", ""]
            continue
        rows = decomposition(results, prof)
        if rows:
            total = sum(ms for _, ms in rows)
            lines += [(f"Server CPU per {point.unit.removesuffix('s')}: "
                      f"**{total:.3f} ms** ({prof.samples:,} GIL samples)."), "",
                      "| part | ms | share |", "|---|---:|---:|"]
            lines += [f"| {name} | {ms:.3f} | {100 * ms / total:.1f} % |" for name, ms in rows if ms >= 0.0005]
        lines += ["", "| inclusive, share of the Python time (any frame of the stack) | share |", "|---|---:|"]
        lines += [f"| {k} | {prof.share(prof.inclusive, k):.1f} % |" for k, _ in prof.inclusive.most_common()]
        lines += ["", "| hottest functions (own time, share of the Python time) | share |", "|---|---:|"]
        lines += [f"| `{k}` | {s_:.1f} % |" for k, s_ in prof.top_functions(15)]
        lines.append("")
    lines += ["## Memory", "", memory_table(results), "",
              ("Idle: after start-up and the preparation requests, before any load. After load: after the last "
              "scenario on that service."), ""]
    lines += ["## Commands", "", "```", "python3 -m bench" + _args_text(a)]
    lines += [f"  {c}" for c in dict.fromkeys(results.commands)]
    lines += ["```", ""]
    lines += ["## How it is measured", "",
              ("- Load comes from `wrk` (Debian) with the Lua scripts in `bench/lua/`, one wrk thread, a separate "
              "process; never from Python in the server's process. The code flow is two requests per flow "
              "(`flow.lua`: a thread's queue turns each authorize redirect into the token request for its code); "
              "the refresh scenario presents each refresh token once (`refresh.lua` queues the rotated token from "
              "each answer; tokens left at the end of a run start the next, topped up by new code flows made "
              "between runs)."),
              ("- The account is on the enterprise plan with custom limits of 10⁹ per hour and per minute, so the "
              "API's rate limiter counts every request (in Redis when present) and never refuses one. API keys are "
              "introspected once per worker and cached (30 s)."),
              ("- The bare view is the API service's own app with `GET /v1/users` running the view under "
              "`@protected` (no `require_auth`, no rate limiter, no usage count) with the principal of the JWT, "
              "built in `bench/bare_api.py` without touching `authserver/`. The auth layer's cost is measured "
              "against it with the API service run without `AUTHSERVER_API_CLIENT_ID` (JWT verification and rate "
              "limiting, no usage metering); the service as shipped, with metering, is measured too."),
              ("- The like-for-like comparison runs our server exactly as `../shared/bench/peer-oidc-provider.sh` "
              "runs the peer: one process on CPU 0, `../shared/bench/load.sh` (same wrk script, same "
              "client_secret_basic body) with wrk on CPU 1."),
              ("- The RSA ceiling signs a JWT-sized input with RSA-2048 / SHA-256 in one process pinned to one core "
              "(`bench/rsa_ceiling.py`), signatures per CPU-second."),
              ""]
    return "\n".join(lines)


def _steal_share(results) -> float:
    total = results.seconds * (os.cpu_count() or 1)
    return 100 * results.steal_s / total if total else 0.0


def _args_text(a) -> str:
    parts = []
    if a.smoke:
        parts.append("--smoke")
    else:
        if a.runs != 3:
            parts.append(f"--runs {a.runs}")
        if a.duration != 10:
            parts.append(f"--duration {a.duration}")
        if a.warmup != 3:
            parts.append(f"--warmup {a.warmup}")
    if a.store != "auto":
        parts.append(f"--store {a.store}")
    return (" " + " ".join(parts)) if parts else ""
