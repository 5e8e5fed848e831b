"""The API service's `/readyz` (the issuer's signing keys loaded, Redis answering when configured)
and `/metrics` (requests by endpoint and status, rate-limit refusals by plan, JWKS refreshes by
outcome), against the real authorization server over HTTP."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from authserver.api import ApiConfig, create_api_app
from authserver.api.app import EXTENSION

from ..resource.live import AUDIENCE
from ..stores import free_port, require_redis, unique_prefix

TOKEN = "api-scraper-" + "t" * 20


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def samples(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def api_client(**config):
    app = create_api_app(ApiConfig(audience=AUDIENCE, **config))
    return app, app.test_client()


def test_ready_once_the_issuers_keys_are_loaded(server, client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ready", "checks": {"keys": "ok"}})


def test_an_unreachable_issuer_makes_the_service_unready_and_counts_a_failed_refresh():
    issuer = f"http://127.0.0.1:{free_port()}"
    app, client = api_client(issuer=issuer)
    try:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert (response.status_code, response.get_json()) == (
            503, {"status": "unavailable", "checks": {"keys": "failed"}})
        assert issuer not in response.get_data(as_text=True)
        found = samples(client)
        assert value(found, "authserver_api_jwks_refreshes_total", outcome="failed") == 1
        assert value(found, "authserver_api_jwks_refreshes_total", outcome="ok") == 0
    finally:
        app.extensions[EXTENSION].limiter.close()


def test_redis_is_checked_when_configured(server):
    reachable, client = api_client(issuer=server.issuer, redis_url=require_redis(), ratelimit_prefix=unique_prefix())
    dead, dead_client = api_client(issuer=server.issuer, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert client.get("/readyz").get_json()["checks"] == {"keys": "ok", "redis": "ok"}
        response = dead_client.get("/readyz")
        assert (response.status_code, response.get_json()["checks"]) == (503, {"keys": "ok", "redis": "failed"})
    finally:
        reachable.extensions[EXTENSION].limiter.close()
        dead.extensions[EXTENSION].limiter.close()


def test_requests_refusals_and_key_refreshes_are_counted(server, client):
    token = server.client_token("read:users")  # no plan claim: the free plan, 50 a minute
    statuses = [client.get("/v1/users", headers=bearer(token)).status_code for _ in range(52)]
    assert statuses == [200] * 50 + [429] * 2
    assert client.get("/v1/users").status_code == 401

    found = samples(client)
    assert value(found, "authserver_api_http_requests_total", endpoint="list_users", status="200") == 50
    assert value(found, "authserver_api_http_requests_total", endpoint="list_users", status="429") == 2
    assert value(found, "authserver_api_http_requests_total", endpoint="list_users", status="401") == 1
    assert value(found, "authserver_api_http_request_duration_seconds_count", endpoint="list_users") == 53
    assert value(found, "authserver_api_rate_limit_refusals_total", plan="free") == 2
    assert value(found, "authserver_api_rate_limit_refusals_total", plan="pro") == 0
    assert value(found, "authserver_api_jwks_refreshes_total", outcome="ok") == 1  # one fetch served them all


def test_the_metrics_token_guards_the_api_metrics_too(server):
    app, client = api_client(issuer=server.issuer, metrics_token=TOKEN)
    try:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(TOKEN), environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    finally:
        app.extensions[EXTENSION].limiter.close()
    _, open_client = api_client(issuer=server.issuer)
    assert open_client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
