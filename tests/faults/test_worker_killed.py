"""kill -9 of a server worker in the middle of a load of token requests that write rows (codes
issued and redeemed, refresh tokens rotated): the load sees connection errors only for the
requests in flight on that worker, never a 5xx; granian starts a new worker and the server keeps
serving; and nothing stored is half-written (counted from the database afterwards)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from authserver.credentials import digest

from ..databases import fresh_database
from ..e2e.processes import running_server
from .deployment import REDIRECT_URI, Browser, prepare
from .load import Load

pytestmark = pytest.mark.e2e

CHAIN_THREADS = 4  # each: authorize → redeem the code → rotate its refresh token a few times
ROTATIONS = 3
DEADLINE = 30  # seconds: a bound for what must happen, never a measured speed


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    with fresh_database(tmp_path_factory, "kill-db") as url:
        yield url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, database_url):
    return prepare(tmp_path_factory, database_url, "kill-worker")


def workers(pid: int) -> set[int]:
    """The server's worker processes: its children, from /proc."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children.update(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return children


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        time.sleep(0.05)


def test_a_killed_worker_loses_only_its_requests_in_flight_and_nothing_stored(deployment, database_url):
    with running_server(deployment.workspace, workers=2) as server:
        browser = Browser(server, deployment)
        issued: list[str] = []  # every refresh token the load received
        rotated: list[str] = []  # every refresh token the load had rotated (answered 200)

        def step(load: Load, index: int) -> None:
            if index == CHAIN_THREADS:  # one thread of client_credentials, which writes nothing
                load.request("client_credentials", "POST", server.url("/oauth/token"), auth=deployment.service,
                             data={"grant_type": "client_credentials", "scope": "read:users"})
                return
            verifier, url = browser.authorize_url()
            authorized = load.request("authorize", "GET", url, cookies=browser.cookies())
            if authorized.status != 302:
                return  # a connection error: start over
            redeemed = load.request("code", "POST", server.url("/oauth/token"), auth=deployment.app, data={
                "grant_type": "authorization_code", "code": code_from_location(authorized),
                "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
            if redeemed.status != 200:
                return  # a lost answer: the chain cannot go on (its token may have been issued)
            token = redeemed_json(redeemed)["refresh_token"]
            issued.append(token)
            for _ in range(ROTATIONS):
                refreshed = load.request("refresh", "POST", server.url("/oauth/token"), auth=deployment.app,
                                         data={"grant_type": "refresh_token", "refresh_token": token})
                if refreshed.status != 200:
                    return  # a lost answer: a retry would be a replay
                rotated.append(token)
                token = redeemed_json(refreshed)["refresh_token"]
                issued.append(token)

        pid = server.process.pid
        before = workers(pid)
        assert len(before) == 2, before
        with Load(step, threads=CHAIN_THREADS + 1) as load:
            _wait_for(lambda: load.count(label="refresh") >= 20, "20 refreshes before the kill")
            victim = min(before)
            load.phase = "killed"
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            _wait_for(lambda: len(workers(pid) - before) == 1 and victim not in workers(pid), "a new worker")
            load.phase = "respawned"
            seen = load.count(phase="respawned", label="refresh")
            _wait_for(lambda: load.count(phase="respawned", label="refresh") >= seen + 20, "20 refreshes after")
        assert not load.failures, load.failures
        assert server.process.poll() is None, "the server exited"

        failed = [o for o in load.outcomes if o.status is None]
        # Each thread has at most one request in flight, and only those on the victim can fail.
        assert len(failed) <= CHAIN_THREADS + 1, load.summary()
        assert all(o.finished >= killed_at for o in failed), load.summary()
        for outcome in load.outcomes:
            assert outcome.status is None or outcome.status == (302 if outcome.label == "authorize" else 200), outcome
        after = requests_ok(server, deployment)
        assert after == 200

    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT digest, family, used_at, revoked_at FROM refresh_tokens")).all()
            families = {family for _, family, _, _ in rows}
            used_codes = db.execute(text(
                "SELECT refresh_family FROM authorization_codes WHERE used_at IS NOT NULL")).scalars().all()
    finally:
        engine.dispose()
    by_digest = {row.digest: row for row in rows}
    # Every token the load received is stored once; every one it rotated is marked used.
    assert all(digest(token) in by_digest for token in issued)
    assert all(by_digest[digest(token)].used_at is not None for token in rotated)
    # Nobody replayed anything, so nothing is revoked; each family is one chain: every token but
    # its last was rotated into exactly one successor, so exactly one is unused.
    assert all(row.revoked_at is None for row in rows)
    for family in families:
        members = [row for row in rows if row.family == family]
        assert sum(row.used_at is None for row in members) == 1, members
    # One family per redeemed code, each recorded on its code.
    assert sorted(used_codes) == sorted(families)
    # Rows the load never saw are answers lost with the worker: at most one per failed request.
    assert len(rows) - len(issued) <= len(failed)


def code_from_location(outcome) -> str:
    return parse_qs(urlsplit(outcome.headers["Location"]).query)["code"][0]


def redeemed_json(outcome) -> dict:
    return json.loads(outcome.body)


def requests_ok(server, deployment) -> int:
    return requests.post(server.url("/oauth/token"), auth=deployment.service, timeout=10,
                         data={"grant_type": "client_credentials", "scope": "read:users"}).status_code
