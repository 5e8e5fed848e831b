"""PostgreSQL stopped and started again under load, on a private cluster (never the shared one):
during the outage every surface answers a clean 503 with Retry-After (the RFC 6749 error
`temporarily_unavailable` on /oauth/*, the SERVICE_UNAVAILABLE envelope on /v1/*, an HTML page
for browser pages), never a 500 or a stack trace; once PostgreSQL is back the same server
processes answer 200 again by themselves. Runs the same whatever AUTHSERVER_TEST_DATABASE says."""

from __future__ import annotations

import time

import pytest

from ..e2e.processes import running_server
from .deployment import Browser, code_from, prepare
from .load import Load
from .postgres_cluster import PrivatePostgres

pytestmark = pytest.mark.e2e

DEADLINE = 30  # seconds: a bound for what must happen, never a measured speed
LABELS = ("oauth-token", "oauth-refresh", "v1-refresh", "html-dashboard")
LEAKS = ("Traceback", "sqlalchemy", "psycopg", "OperationalError", "SELECT", "postgresql")


@pytest.fixture(scope="module")
def postgres():
    cluster = PrivatePostgres().init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres):
    return prepare(tmp_path_factory, postgres.url, "pg-outage")


@pytest.fixture(scope="module")
def server(deployment):
    with running_server(deployment.workspace, workers=2) as server:
        yield server


def _refresh_token(server, deployment, browser: Browser) -> str:
    verifier, url = browser.authorize_url()
    code = code_from(browser.session.get(url, allow_redirects=False, timeout=10))
    response = browser.session.post(server.url("/oauth/token"), auth=deployment.app, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example.com/callback",
        "code_verifier": verifier})
    assert response.status_code == 200, response.text
    return response.json()["refresh_token"]


def _wait_for(condition, what: str, load: Load) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}; seen: {load.summary()}"
        time.sleep(0.1)


def test_postgres_restart_under_load_answers_503_then_recovers_without_restart(postgres, deployment, server):
    browser = Browser(server, deployment)
    chains = {"oauth-refresh": _refresh_token(server, deployment, browser),
              "v1-refresh": _refresh_token(server, deployment, browser)}
    cookies = browser.cookies()

    def step(load: Load, index: int) -> None:
        label = LABELS[index]
        if label == "oauth-token":
            load.request(label, "POST", server.url("/oauth/token"), auth=deployment.service,
                         data={"grant_type": "client_credentials", "scope": "read:users"})
        elif label == "oauth-refresh":
            outcome = load.request(label, "POST", server.url("/oauth/token"), auth=deployment.app,
                                   data={"grant_type": "refresh_token", "refresh_token": chains[label]})
            if outcome.status == 200:
                chains[label] = _json(outcome)["refresh_token"]
        elif label == "v1-refresh":
            outcome = load.request(label, "POST", server.url("/v1/auth/refresh"), auth=deployment.app,
                                   json={"refresh_token": chains[label]})
            if outcome.status == 200:
                chains[label] = _json(outcome)["refresh_token"]
        else:
            load.request(label, "GET", server.url("/dashboard"), cookies=cookies)
        time.sleep(0.02)

    def seen(phase: str, status: int, labels=LABELS):
        return lambda: all(any(o.status == status for o in load.select(phase=phase, label=label)) for label in labels)

    with Load(step, threads=len(LABELS)) as load:
        _wait_for(seen("before", 200), "every surface answered 200 before the outage", load)
        load.phase = "outage"
        outage_began = time.monotonic()
        postgres.stop("fast")
        # The client_credentials client may be served from the per-worker client cache meanwhile.
        _wait_for(seen("outage", 503, LABELS[1:]), "every surface that reads the database answered 503", load)
        load.phase = "recovering"
        postgres.start()
        _wait_for(seen("recovering", 200), "every surface answered 200 again after PostgreSQL came back", load)
        load.phase = "after"
        _wait_for(lambda: all(load.count(phase="after", label=label) >= 5 for label in LABELS), "load after recovery", load)
    assert not load.failures, load.failures
    assert server.process.poll() is None, "the server exited"

    for outcome in load.outcomes:
        assert outcome.status is not None, f"a connection failed: {outcome}"
        assert outcome.status in (200, 503), outcome
        assert not any(leak in outcome.body for leak in LEAKS), outcome.body
    # A request sent just before the stop may be answered during it: 200 or 503 as the others.
    answered_before = [o for o in load.select(phase="before") if o.finished < outage_began]
    for outcome in answered_before + load.select(phase="after"):
        assert outcome.status == 200, outcome

    unavailable = [o for o in load.outcomes if o.status == 503]
    assert unavailable
    for outcome in unavailable:
        assert outcome.headers.get("Retry-After") == "5", outcome
        if outcome.label.startswith("oauth"):
            body = _json(outcome)
            assert body["error"] == "temporarily_unavailable" and body["error_description"], body
            assert outcome.headers["Cache-Control"] == "no-store"
        elif outcome.label == "v1-refresh":
            assert _json(outcome) == {"error": {"code": "SERVICE_UNAVAILABLE", "status": 503,
                                                "message": "The service is temporarily unavailable. Try again shortly."}}
        else:
            assert outcome.headers["Content-Type"].startswith("text/html"), outcome
            assert "Temporarily unavailable" in outcome.body

    log = server.stderr()
    assert "database unavailable on POST /oauth/token" in log
    assert "Traceback" not in log, log


def _json(outcome) -> dict:
    import json

    return json.loads(outcome.body)
