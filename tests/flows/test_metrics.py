"""The server's Prometheus metrics at /metrics (authserver/metrics.py): requests by endpoint (the
route's name, never the path) and status, latency by endpoint, tokens issued by grant, security
events; who may read them (loopback only, or the metrics token); each app counts on its own."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from authserver.app import create_app

from ..helpers import login

TOKEN = "scrape-me-" + "s" * 24
REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def samples(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics: (name, labels) → value."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def client_credentials(client, app_client, secret: str):
    return client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "read:users"},
                       auth=(app_client.client_id, secret))


def test_requests_are_counted_by_endpoint_and_status_and_tokens_by_grant(client, make_client):
    app_client, secret = make_client()
    for _ in range(3):
        assert client_credentials(client, app_client, secret).status_code == 200
    assert client_credentials(client, app_client, "wrong-secret").status_code == 401
    assert client.delete("/v1/api-keys/key_0123456789abcdef01234567").status_code == 401
    assert client.get("/no/such/page/12345").status_code == 404

    found = samples(client)
    assert value(found, "authserver_http_requests_total", endpoint="oauth.token", status="200") == 3
    assert value(found, "authserver_http_requests_total", endpoint="oauth.token", status="401") == 1
    assert value(found, "authserver_http_requests_total", endpoint="api_keys.revoke_key", status="401") == 1
    assert value(found, "authserver_http_requests_total", endpoint="unmatched", status="404") == 1
    assert value(found, "authserver_http_request_duration_seconds_count", endpoint="oauth.token") == 4
    assert value(found, "authserver_http_request_duration_seconds_bucket", endpoint="oauth.token", le="+Inf") == 4
    assert value(found, "authserver_tokens_issued_total", grant="client_credentials") == 3  # not the refused one
    assert value(found, "authserver_tokens_issued_total", grant="authorization_code") == 0
    # Label values are route names: no path, no id from a URL.
    label_values = {value for _, labels in found for _, value in labels}
    assert not any("/" in each or "12345" in each or "key_" in each for each in label_values), label_values


def test_failed_sign_ins_are_counted_as_security_events(client, make_user):
    user = make_user()
    assert login(client, user.email, "wrong password here").status_code == 401
    assert login(client, user.email).status_code == 302
    found = samples(client)
    assert value(found, "authserver_security_events_total", event="login_failed") == 1
    assert value(found, "authserver_security_events_total", event="login_succeeded") == 1


def test_without_a_token_only_loopback_clients_may_read_the_metrics(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    refused = client.get("/metrics", environ_base=REMOTE)
    assert refused.status_code == 404 and b"authserver_" not in refused.data


def test_behind_a_trusted_proxy_the_forwarded_address_decides(settings_overrides):
    client = create_app({**settings_overrides, "trusted_proxies": "1"}).test_client()
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_with_a_token_the_metrics_need_it_from_anywhere(settings_overrides):
    client = create_app({**settings_overrides, "metrics_token": TOKEN}).test_client()
    for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": "Basic " + TOKEN},
                    {"Authorization": "Bearer " + TOKEN + "x"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"authserver_" not in refused.data and TOKEN.encode() not in refused.data
    assert client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN}, environ_base=REMOTE).status_code == 200


@pytest.mark.parametrize("token", ["short", "a token with spaces in it", "é" * 20])
def test_an_unusable_metrics_token_stops_the_start_without_repeating_it(settings_overrides, token):
    from authserver.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        create_app({**settings_overrides, "metrics_token": token})
    assert "AUTHSERVER_METRICS_TOKEN" in str(refused.value) and token not in str(refused.value)


def test_each_app_counts_on_its_own(settings_overrides, client):
    other = create_app(settings_overrides).test_client()
    for _ in range(2):
        other.get("/healthz")
    client.get("/healthz")
    assert value(samples(other), "authserver_http_requests_total", endpoint="health.healthz", status="200") == 2
    assert value(samples(client), "authserver_http_requests_total", endpoint="health.healthz", status="200") == 1
