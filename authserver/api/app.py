"""The sample API service's Flask app: `create_api_app(config=None)`.

Routes (JSON everywhere; every error is `{"error": {"code", "message", "status"}}`):

- `GET /v1/users` (scope `read:users`): the users the caller may see. This sample has no user
  database, so that is the token's own account: `{"data": [{"id", "type", "plan", "name",
  "email"}], "has_more": false, "total": 1}`.
- `GET /v1/users/me` (any valid token or API key): `{"id", "type", "plan", "scopes", "client_id",
  "key_id", "name", "email"}`; `client_id` is null for an API key, `key_id` null for a token.
- `POST /v1/data` (scope `write:data`): a JSON object in, 201 with `{"id": "data_…", "owner",
  "created_at", "data": <the object>}` out; anything but a JSON object is 400 INVALID_REQUEST.
- `POST /v1/auth/refresh`: forwarded unchanged to the authorization server (see `forward_refresh`).
- `GET /healthz`: `{"status": "ok"}`, no authentication: the process answers.
- `GET /readyz`: 200 when the authorization server's signing keys are loaded (fetched now if they
  are not, cool-down permitting) and the rate-limit Redis, when configured, answers; else 503
  naming the failed checks (authserver/readiness.py).
- `GET /metrics`: Prometheus metrics (authserver/metrics.py: requests, latency, rate-limit
  refusals by plan, JWKS refreshes by outcome), for loopback clients or with
  `Authorization: Bearer <AUTHSERVER_METRICS_TOKEN>`.

Credentials: JWT access tokens, and API keys (`Authorization: Bearer tdk_…`) when
AUTHSERVER_API_CLIENT_ID and AUTHSERVER_API_CLIENT_SECRET are set (the keys are introspected with
that client and cached for AUTHSERVER_API_KEY_CACHE_SECONDS; without it, keys get 401
INVALID_API_KEY). If the authorization server cannot check a key: 503 SERVICE_UNAVAILABLE.

Per request on an authenticated route: authenticate (401/403/503, nothing counted), then the rate
limit (429), then the view. The limit is counted per account (`sub`), with the token's `plan`
(no plan, as in client_credentials tokens: free) and, for enterprise accounts, the custom limits
of `Principal.rate_limits` when present. A request the limiter lets through is counted for usage
metering (`UsageMeter`, per account, credential and hour: the client_id of a token, the key_id
of an API key) when AUTHSERVER_API_CLIENT_ID and AUTHSERVER_API_CLIENT_SECRET are set. Every response of an authenticated route that got past
authentication carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`.
"""

from __future__ import annotations

import functools
import logging
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from collections.abc import Mapping
from datetime import datetime, timezone

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..metrics import Metrics
from ..readiness import Readiness
from ..resource import APIKeyVerifier, TokenVerifier
from ..resource.flask import ResourceAuth, current_principal, require_auth
from ..resource.jwks import JWKSCache
from ..resource.ratelimit import PLANS, PlanLimits, RateLimiter
from .config import ApiConfig, load_api_config
from .usage import UsageMeter

log = logging.getLogger(__name__)

EXTENSION = "authserver.api"
DEFAULT_PLAN = "free"  # for tokens without a plan claim (client_credentials): the smallest plan
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Authorization", "Accept")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "Pragma", "WWW-Authenticate")
MAX_FORWARDED_RESPONSE_BYTES = 1024 * 1024
CODES = {400: "INVALID_REQUEST", 401: "INVALID_TOKEN", 403: "INSUFFICIENT_SCOPE", 404: "NOT_FOUND",
         429: "RATE_LIMIT_EXCEEDED"}
MESSAGES = {404: "There is nothing at this address.", 405: "This method is not allowed here.",
            413: "The request body is too large."}


@dataclass
class ApiState:
    """What the views share, in `app.extensions["authserver.api"]`."""

    config: ApiConfig
    verifier: TokenVerifier
    limiter: RateLimiter
    meter: UsageMeter | None = None  # None: metering is off
    api_keys: APIKeyVerifier | None = None  # None: API keys are refused
    refusals: dict | None = None  # plan → the counter child of its rate-limit refusals


def create_api_app(config: ApiConfig | None = None) -> Flask:
    """The API app; `config` by default from the environment (`load_api_config`)."""
    config = config if config is not None else load_api_config()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    metrics = Metrics("authserver_api", token=config.metrics_token)
    metrics.init_app(app)  # first: its clock starts before the other hooks
    refreshes = metrics.counter("jwks_refreshes", "Fetches of the issuer's signing keys, by outcome (ok, failed)",
                                ("outcome",))
    verifier = TokenVerifier(config.issuer, config.audience,
                             keys=JWKSCache(config.issuer, on_refresh=lambda outcome: refreshes.labels(outcome).inc()))
    refused = metrics.counter("rate_limit_refusals", "Requests refused with 429, by plan", ("plan",))
    limiter = RateLimiter(config.redis_url, key_prefix=config.ratelimit_prefix)
    meter = api_keys = None
    if config.metering:  # the service's own client: it reports usage and introspects API keys
        meter = UsageMeter(config.usage_url, config.client_id, config.client_secret, config.usage_flush_seconds)
        api_keys = APIKeyVerifier.from_discovery(verifier.keys, config.client_id, config.client_secret,
                                                 ttl=config.api_key_cache_seconds,
                                                 negative_ttl=config.api_key_cache_seconds)
    else:
        log.warning("usage metering is off and API keys are refused: "
                    "AUTHSERVER_API_CLIENT_ID and AUTHSERVER_API_CLIENT_SECRET are unset")
    ResourceAuth(app, verifier, api_keys)
    app.extensions[EXTENSION] = ApiState(config, verifier, limiter, meter, api_keys,
                                         {plan: refused.labels(plan) for plan in (*PLANS, "other")})
    readiness = Readiness({"keys": verifier.keys.ready, **({} if config.redis_url.startswith("memory://")
                                                           else {"redis": limiter.storage_answers})})

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.after_request(_add_rate_limit_headers)

    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readiness.response, methods=["GET"])
    app.add_url_rule("/v1/users", view_func=list_users, methods=["GET"])
    app.add_url_rule("/v1/users/me", view_func=me, methods=["GET"])
    app.add_url_rule("/v1/data", view_func=create_data, methods=["POST"])
    app.add_url_rule("/v1/auth/refresh", view_func=forward_refresh, methods=["POST"])
    return app


def api_state() -> ApiState:
    return current_app.extensions[EXTENSION]


# -- errors ----------------------------------------------------------------------

def error_response(code: str, message: str, status: int, headers: dict | None = None) -> Response:
    response = jsonify(error={"code": code, "message": message, "status": status})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = "INTERNAL_ERROR" if status >= 500 else CODES.get(status, "INVALID_REQUEST")
    message = MESSAGES.get(status, "The server could not complete the request." if status >= 500
                           else exc.description if isinstance(exc, BadJson) else "The request is not valid.")
    # RFC 9110 §15.5.6: a 405 names the allowed methods.
    headers = {name: value for name, value in exc.get_headers() if name == "Allow"}
    return error_response(code, message, status, headers)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response("INTERNAL_ERROR", "The server could not complete the request.", 500)


class BadJson(HTTPException):
    code = 400


# -- authentication, then the rate limit -----------------------------------------

def protected(*scopes: str):
    """`require_auth(*scopes)` (401/403 first, not counted), then the account's rate limit."""

    def decorator(view):
        @functools.wraps(view)
        def rate_limited(*args, **kwargs):
            principal, state = current_principal(), api_state()
            result = state.limiter.hit(principal.subject, *_plan_and_limits(principal))
            g.rate_limit_headers = result.headers
            if not result.allowed:
                state.refusals.get(principal.plan or DEFAULT_PLAN, state.refusals["other"]).inc()
                return error_response("RATE_LIMIT_EXCEEDED", result.body["error"]["message"], 429)
            if state.meter is not None:
                state.meter.count(principal.subject, principal.credential_id)
            return view(*args, **kwargs)

        return require_auth(*scopes)(rate_limited)

    return decorator


def _plan_and_limits(principal) -> tuple[str, PlanLimits | None]:
    """The plan to count with (no plan claim: free) and, for enterprise accounts, their own limits
    from `Principal.rate_limits` when the token carries them (`{"per_hour": int | None,
    "per_minute": int | None}`). Mangled custom limits never become "unlimited": free instead."""
    plan = principal.plan or DEFAULT_PLAN
    custom = getattr(principal, "rate_limits", None)
    if custom is None:
        return plan, None
    try:
        if not isinstance(custom, Mapping) or not set(custom) <= {"per_hour", "per_minute"}:
            raise ValueError(f"not an object of per_hour / per_minute: {custom!r}")
        return plan, PlanLimits(per_hour=custom.get("per_hour"), per_minute=custom.get("per_minute"))
    except ValueError as exc:
        log.warning("custom rate limits of %s are not usable (%s); counting with the free plan", principal.subject, exc)
        return DEFAULT_PLAN, None


def _add_rate_limit_headers(response: Response) -> Response:
    # Also on errors raised by the view (400, 413, 500), which go through the error handlers first.
    for name, value in (g.get("rate_limit_headers") or {}).items():
        response.headers[name] = value
    return response


# -- views -----------------------------------------------------------------------

def healthz():
    return {"status": "ok"}


def _user(principal) -> dict:
    claims = principal.claims
    return {
        "id": principal.subject,
        # A client_credentials token acts for the client itself: its subject is its client_id.
        "type": "client" if principal.subject == principal.client_id else "user",
        "plan": principal.plan or DEFAULT_PLAN,
        "name": claims.get("name"),
        "email": claims.get("email"),
    }


@protected("read:users")
def list_users():
    return {"data": [_user(current_principal())], "has_more": False, "total": 1}


@protected()
def me():
    principal = current_principal()
    user = _user(principal)
    key_id = principal.credential_id if principal.claims.get("token_type") == "api_key" else None
    return {"id": user["id"], "type": user["type"], "plan": user["plan"], "scopes": list(principal.scopes),
            "client_id": principal.client_id, "key_id": key_id, "name": user["name"], "email": user["email"]}


@protected("write:data")
def create_data():
    if request.mimetype != "application/json":
        raise BadJson("The body must be application/json.")
    body = request.get_json(silent=True)  # reading the body may raise 413 first
    if not isinstance(body, dict):
        raise BadJson("The body must be a JSON object.")
    principal = current_principal()
    record = {"id": "data_" + secrets.token_hex(12), "owner": principal.subject,
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": body}
    return record, 201, {"Location": f"/v1/data/{record['id']}"}


# -- POST /v1/auth/refresh ---------------------------------------------------------

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # The refresh endpoint is where the issuer is: a redirect is passed back, never followed.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def forward_refresh():
    """Forwarded unchanged to `{issuer}/v1/auth/refresh`: the body and the Content-Type,
    Authorization and Accept headers; the answer's status, body and Content-Type (and
    Cache-Control, Pragma, WWW-Authenticate) come back as they are. Neither authenticated nor
    rate-limited here: the authorization server judges the refresh token and the client. If the
    server does not answer (unreachable, timeout after 10 s), 502 with code INTERNAL_ERROR."""
    config = api_state().config
    body = request.get_data(cache=False)  # beyond MAX_CONTENT_LENGTH: 413 before anything is sent
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    upstream = urllib.request.Request(config.refresh_url, data=body, headers=headers, method="POST")
    try:
        answer = _opener.open(upstream, timeout=config.forward_timeout)
    except urllib.error.HTTPError as error:  # a 4xx/5xx (or a redirect) is an answer: pass it back
        answer = error
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
        log.warning("POST %s failed: %s", config.refresh_url, exc)
        return error_response("INTERNAL_ERROR", "The authorization server could not be reached.", 502)
    try:
        with answer:
            content = answer.read(MAX_FORWARDED_RESPONSE_BYTES + 1)
    except OSError as exc:
        log.warning("reading the answer of POST %s failed: %s", config.refresh_url, exc)
        return error_response("INTERNAL_ERROR", "The authorization server could not be reached.", 502)
    if len(content) > MAX_FORWARDED_RESPONSE_BYTES:
        return error_response("INTERNAL_ERROR", "The authorization server's answer is too large.", 502)
    response = Response(content, status=answer.status)
    response.headers.remove("Content-Type")
    for name in FORWARDED_RESPONSE_HEADERS:
        if answer.headers.get(name) is not None:
            response.headers[name] = answer.headers[name]
    return response
