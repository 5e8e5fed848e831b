"""Prometheus metrics of a Flask app at `GET /metrics`: the server's and the API service's.

Every app counts its requests by endpoint (the Flask endpoint of the matched route, e.g.
`oauth.token`, never the raw path, so the label values are bounded by the routes; `unmatched` for
a 404/405 without a route) and status, and observes their latency by endpoint. Apps add their own
counters with `Metrics.counter`. The per-request cost is one counter increment and one histogram
observation, on label children cached per (endpoint, status).

Each app has its own registry (tests create many apps in one process; none sees another's
counts). Under the WSGI server (wsgi_server.py) workers are separate processes: the serving
command sets PROMETHEUS_MULTIPROC_DIR to a fresh private directory before forking, each worker
writes its values there, and `/metrics` adds up every worker's files (prometheus-client's
multiprocess mode). Only counters and histograms are used, whose totals stay valid after a worker
dies, so no bookkeeping of dead workers is needed.

Access: `/metrics` is for the operator's scraper, not the public. With a metrics token
(AUTHSERVER_METRICS_TOKEN) it requires `Authorization: Bearer <token>` (401 otherwise); without
one it answers only requests from a loopback address (after ProxyFix when trusted proxies are
configured) and is a 404 to everyone else.

This module imports only Flask and prometheus-client: the API service uses it without the
server's code.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from flask import Flask, Request, Response, abort, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, disable_created_metrics,
                               generate_latest, values)
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # no `_created` series: they double the text and nobody here reads them

EXTENSION = "authserver.metrics"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # the endpoint label of a request no route matched
STARTED = "authserver.metrics.started"  # the WSGI environ key of the request's start time
MIN_TOKEN_LENGTH = 16


class Metrics:
    """The metrics of one app; `init_app` hooks the request counting and adds `/metrics`."""

    def __init__(self, namespace: str, *, token: str | None = None):
        """`namespace` prefixes every metric name (`authserver`, `authserver_api`); `token`: the
        Bearer token `/metrics` requires (None: loopback clients only)."""
        self.namespace = namespace
        self._token = token.encode() if token else None
        self.registry = CollectorRegistry()
        self._exposed = self.registry
        if os.environ.get(MULTIPROCESS_DIR):
            _use_multiprocess_values()
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed)
        self.requests = self.counter("http_requests", "HTTP requests answered, by endpoint and status",
                                     ("endpoint", "status"))
        self.latency = Histogram(f"{namespace}_http_request_duration_seconds",
                                 "Time from the request's dispatch to its response, by endpoint",
                                 ("endpoint",), registry=self.registry)
        self._children: dict[tuple[str, int], tuple] = {}

    def counter(self, name: str, documentation: str, labelnames: tuple[str, ...] = ()) -> Counter:
        """A counter of this app (`<namespace>_<name>_total`)."""
        return Counter(f"{self.namespace}_{name}", documentation, labelnames, registry=self.registry)

    def init_app(self, app: Flask) -> None:
        """Call before other extensions register their `before_request` hooks, so that the time
        is taken first (and the count is made last, on the final response)."""
        app.extensions[EXTENSION] = self
        app.before_request(_start_clock)
        app.after_request(self._count_request)
        app.add_url_rule("/metrics", "metrics", self._serve, methods=["GET"])

    def exposition(self) -> bytes:
        """The text format of every metric (every worker's, in multiprocess mode)."""
        return generate_latest(self._exposed)

    def _count_request(self, response: Response) -> Response:
        current = request._get_current_object()  # one proxy lookup instead of one per attribute
        endpoint = current.endpoint or UNMATCHED
        key = (endpoint, response.status_code)
        children = self._children.get(key)
        if children is None:
            children = self._children.setdefault(
                key, (self.requests.labels(endpoint, str(response.status_code)), self.latency.labels(endpoint)))
        children[0].inc()
        started = current.environ.get(STARTED)
        if started is not None:
            children[1].observe(time.perf_counter() - started)
        self._count_more(current, endpoint, response)
        return response

    def _count_more(self, current: Request, endpoint: str, response: Response) -> None:
        """An app's own per-response counts (none here)."""

    def _serve(self):
        if self._token is None:
            if not _is_loopback(request.remote_addr):
                abort(404)
        elif not hmac.compare_digest(request.headers.get("Authorization", "").encode(), b"Bearer " + self._token):
            return Response("Unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                            mimetype="text/plain")
        return Response(self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def check_token(variable: str, token: str | None) -> str | None:
    """A metrics token setting: unset or empty is None; else at least MIN_TOKEN_LENGTH printable
    ASCII characters (it goes into an HTTP header). The message never repeats the value."""
    if not token:
        return None
    if len(token) < MIN_TOKEN_LENGTH or not all("\x21" <= char <= "\x7e" for char in token):
        raise ValueError(f"{variable}: must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces")
    return token


def _start_clock() -> None:
    request.environ[STARTED] = time.perf_counter()


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _use_multiprocess_values() -> None:
    """prometheus-client picks how values are stored when it is first imported; a process that
    imported it before PROMETHEUS_MULTIPROC_DIR was set must switch before creating metrics."""
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()


# -- the authorization server's own metrics -------------------------------------------

# The endpoints that issue tokens; the grant is the request's grant_type unless named here.
TOKEN_ENDPOINTS = {"oauth.token": None, "api_v1.refresh": "refresh_token"}
GRANTS = ("authorization_code", "refresh_token", "client_credentials")


class ServerMetrics(Metrics):
    """The HTTP metrics, plus tokens issued by grant and security events (audit.py) by kind."""

    def __init__(self, *, token: str | None = None):
        super().__init__("authserver", token=token)
        issued = self.counter("tokens_issued", "Successful token responses, by grant type", ("grant",))
        self._issued = {grant: issued.labels(grant) for grant in (*GRANTS, "other")}
        self._events = self.counter("security_events", "Audit log events, by kind (login_failed, …)", ("event",))

    def count_event(self, event: str) -> None:
        """One audit event; `event` is one of the code's event names (a bounded set)."""
        self._events.labels(event).inc()

    def _count_more(self, current: Request, endpoint: str, response: Response) -> None:
        if response.status_code == 200 and endpoint in TOKEN_ENDPOINTS:
            grant = TOKEN_ENDPOINTS[endpoint] or _grant_type(current)
            self._issued.get(grant, self._issued["other"]).inc()


def _grant_type(current: Request) -> str | None:
    params = current.get_json(silent=True) if current.is_json else current.form
    return params.get("grant_type") if isinstance(params, dict) else None  # a MultiDict is a dict
