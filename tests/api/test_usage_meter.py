"""Usage metering: the sample API counts authenticated requests and reports them to the real
authorization server over HTTP (`POST /v1/usage` with its client credentials), where the account
owner reads them (`GET /v1/usage`)."""

from __future__ import annotations

import logging
import time
import urllib.request

import pytest

from authserver.api import ApiConfig, ApiConfigError, create_api_app, load_api_config
from authserver.api import usage as usage_module
from authserver.api.app import EXTENSION
from authserver.api.usage import UsageMeter

from ..e2e.processes import free_port
from ..resource.live import AUDIENCE


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def metered(server):
    """An API app that meters, with the live server's client as its own; it flushes only when told."""
    app = create_api_app(ApiConfig(issuer=server.issuer, audience=AUDIENCE, client_id=server.client_id,
                                   client_secret=server.client_secret, usage_flush_seconds=3600))
    yield app
    state = app.extensions[EXTENSION]
    state.meter.close()
    state.limiter.close()


def meter_of(app) -> UsageMeter:
    return app.extensions[EXTENSION].meter


def account_usage(server) -> tuple[str, dict]:
    """The live user's (account id, total per credential over the last 24 hours), from GET /v1/usage."""
    response = server.app.test_client().get("/v1/usage", headers=bearer(server.user_tokens()["access_token"]))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    totals: dict[str, int] = {}
    for hour in body["hourly"]:
        for credential, count in hour["by_credential"].items():
            totals[credential] = totals.get(credential, 0) + count
    return body["account"], totals


def discard(meter: UsageMeter) -> None:
    """Forget what a test meter holds, so that its close() (also at exit) sends nothing."""
    meter._counts.clear()
    meter._pending = None
    meter.close()


def call(app, server, n: int, path="/v1/users/me") -> None:
    client = app.test_client()
    for _ in range(n):
        assert client.get(path, headers=bearer(server.user_tokens()["access_token"])).status_code == 200


def test_requests_are_counted_and_a_flush_reaches_the_owner(server, metered):
    account, before = account_usage(server)
    call(metered, server, 3)
    call(metered, server, 2, "/v1/users")
    meter = meter_of(metered)
    [(key, count)] = meter.pending_counts().items()
    assert key[:2] == (account, server.client_id) and key[2] % 3600 == 0 and count == 5

    assert meter.flush() is True
    assert meter.pending_counts() == {} and meter.pending_batch is None
    _, after = account_usage(server)
    assert after.get(server.client_id, 0) - before.get(server.client_id, 0) == 5


def test_refused_and_unauthenticated_requests_are_not_counted(server, metered):
    client = metered.test_client()
    assert client.get("/v1/users/me").status_code == 401
    assert client.get("/v1/users/me", headers=bearer("not-a-token")).status_code == 401
    token = server.client_token("write:data")  # lacks read:users
    assert client.get("/v1/users", headers=bearer(token)).status_code == 403
    assert client.get("/healthz").status_code == 200
    assert meter_of(metered).pending_counts() == {}


def test_rate_limited_requests_are_not_counted(server, metered):
    token = server.client_token("read:users")  # no plan: free, 50 per minute
    client = metered.test_client()
    statuses = [client.get("/v1/users", headers=bearer(token)).status_code for _ in range(52)]
    assert statuses.count(429) == 2
    assert sum(meter_of(metered).pending_counts().values()) == 50


def test_a_failed_send_is_retried_with_the_same_batch_and_counted_once(server, metered, monkeypatch):
    account, before = account_usage(server)
    call(metered, server, 4)
    meter = meter_of(metered)
    sent: list[bytes] = []
    real_urlopen = urllib.request.urlopen

    def lose_the_answer(request, timeout):
        """The server gets and applies the batch, but its answer never arrives."""
        sent.append(request.data)
        with real_urlopen(request, timeout=timeout):
            pass
        raise TimeoutError("the answer was lost")

    monkeypatch.setattr(usage_module.urllib.request, "urlopen", lose_the_answer)
    assert meter.flush() is False
    batch = meter.pending_batch
    assert batch is not None and len(sent) == 1
    call(metered, server, 1)  # counted meanwhile: goes in the next batch, not this one

    def down(request, timeout):
        sent.append(request.data)
        raise ConnectionRefusedError("down")

    monkeypatch.setattr(usage_module.urllib.request, "urlopen", down)
    assert meter.flush() is False
    assert meter.pending_batch == batch  # same id, same counts

    monkeypatch.setattr(usage_module.urllib.request, "urlopen", real_urlopen)
    assert meter.flush() is True
    assert sent[0] == sent[1] == batch.body()
    assert meter.pending_batch is None and meter.pending_counts() == {}
    _, after = account_usage(server)
    # 4 in the batch applied once (the retry was a duplicate), 1 in the next batch.
    assert after.get(server.client_id, 0) - before.get(server.client_id, 0) == 5


def test_wrong_client_credentials_keep_the_batch(server):
    meter = UsageMeter(f"{server.issuer}/v1/usage", server.client_id, "wrong-secret", 3600)
    try:
        meter.count("user_x", "client_y")
        assert meter.flush() is False
        assert meter.pending_batch is not None
    finally:
        discard(meter)


def test_the_background_flusher_and_shutdown_send_the_counts(server):
    app = create_api_app(ApiConfig(issuer=server.issuer, audience=AUDIENCE, client_id=server.client_id,
                                   client_secret=server.client_secret, usage_flush_seconds=0.2))
    state = app.extensions[EXTENSION]
    try:
        _, before = account_usage(server)
        call(app, server, 3)
        deadline = time.monotonic() + 10
        while account_usage(server)[1].get(server.client_id, 0) - before.get(server.client_id, 0) < 3:
            assert time.monotonic() < deadline, "the flusher did not send the counts"
            time.sleep(0.1)
        state.meter._stop.set()  # no more background flushes: only close() sends now
        state.meter._thread.join(5)
        call(app, server, 2)
        state.meter.close()  # what atexit runs
        assert account_usage(server)[1].get(server.client_id, 0) - before.get(server.client_id, 0) == 5
    finally:
        state.meter.close()
        state.limiter.close()


def test_metering_is_off_without_client_credentials(server, caplog):
    with caplog.at_level(logging.WARNING, logger="authserver.api.app"):
        app = create_api_app(ApiConfig(issuer=server.issuer, audience=AUDIENCE))
    try:
        assert app.extensions[EXTENSION].meter is None
        assert [r.getMessage() for r in caplog.records if "metering is off" in r.getMessage()] != []
        call(app, server, 1)
    finally:
        app.extensions[EXTENSION].limiter.close()


def test_metering_settings_from_the_environment():
    config = load_api_config({"AUTHSERVER_API_CLIENT_ID": "client_a", "AUTHSERVER_API_CLIENT_SECRET": "s3cret",
                              "AUTHSERVER_USAGE_FLUSH_SECONDS": "2.5", "AUTHSERVER_ISSUER": "https://auth.example.com/"})
    assert config.metering and config.usage_flush_seconds == 2.5
    assert config.usage_url == "https://auth.example.com/v1/usage"
    assert load_api_config({}).usage_flush_seconds == 10 and not load_api_config({}).metering


@pytest.mark.parametrize("env", [
    {"AUTHSERVER_API_CLIENT_ID": "client_a"},
    {"AUTHSERVER_API_CLIENT_SECRET": "s3cret"},
    {"AUTHSERVER_USAGE_FLUSH_SECONDS": "soon"},
    {"AUTHSERVER_USAGE_FLUSH_SECONDS": "0"},
    {"AUTHSERVER_USAGE_FLUSH_SECONDS": "nan"},
    {"AUTHSERVER_USAGE_FLUSH_SECONDS": "86400"},
])
def test_bad_metering_settings_name_the_variable(env):
    with pytest.raises(ApiConfigError) as raised:
        load_api_config(env)
    message = str(raised.value)
    assert "\n" not in message and any(name in message for name in env)


def test_a_batch_fits_the_servers_body_limit():
    meter = UsageMeter(f"http://127.0.0.1:{free_port()}/v1/usage", "c", "s", 3600)
    try:
        for i in range(1500):
            meter._counts[("u" * 60 + f"{i:04d}", "c" * 64, 3600)] = 10**8
        batch = meter._take_batch()
        assert len(batch.body()) <= 48 * 1024 and all(entry["count"] == 10**7 for entry in batch.counts)
        assert len(meter._counts) == 1500  # the counts beyond 10^7 stay for later batches
    finally:
        discard(meter)
