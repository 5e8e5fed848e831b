"""The API service's settings, from environment variables, validated at start-up.

| variable | default | meaning |
|---|---|---|
| `AUTHSERVER_ISSUER` | `http://127.0.0.1:5000` | the authorization server: tokens' `iss`, discovery, refresh forwarding |
| `AUTHSERVER_API_AUDIENCE` | `http://127.0.0.1:5001` | the `aud` this API accepts |
| `AUTHSERVER_REDIS_URL` | unset: `memory://` | rate-limit counters (Redis: shared by every worker) |
| `AUTHSERVER_RATELIMIT_PREFIX` | `authserver-ratelimit` | prefix of the rate-limit keys in Redis |
| `AUTHSERVER_API_CLIENT_ID` | unset | this service's own OAuth client (confidential, `client_credentials` grant), which reports usage counts and introspects API keys; unset: no metering, no API keys |
| `AUTHSERVER_API_CLIENT_SECRET` | unset | that client's secret; set both or neither |
| `AUTHSERVER_USAGE_FLUSH_SECONDS` | `10` | how often each worker sends its usage counts (0.1-3600) |
| `AUTHSERVER_METRICS_TOKEN` | unset | the Bearer token `/metrics` requires (at least 16 characters); unset: `/metrics` answers loopback clients only |
| `AUTHSERVER_API_KEY_CACHE_SECONDS` | `30` | how long each worker trusts the server's answer about an API key (0-3600; 0: ask every time): a revoked key is accepted for at most this long |

Separate from `authserver/settings.py` on purpose: the service must not import the server's code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from ..metrics import check_token

DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_AUDIENCE = "http://127.0.0.1:5001"
DEFAULT_STORAGE = "memory://"
DEFAULT_PREFIX = "authserver-ratelimit"
DEFAULT_FLUSH_SECONDS = 10.0
MIN_FLUSH_SECONDS, MAX_FLUSH_SECONDS = 0.1, 3600.0
DEFAULT_KEY_CACHE_SECONDS = 30.0
MAX_KEY_CACHE_SECONDS = 3600.0
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class ApiConfigError(ValueError):
    """A setting has a bad value; the message names the variable and says why, in one line."""


@dataclass(frozen=True)
class ApiConfig:
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    redis_url: str = DEFAULT_STORAGE  # memory:// when AUTHSERVER_REDIS_URL is unset
    ratelimit_prefix: str = DEFAULT_PREFIX
    max_body_bytes: int = 64 * 1024  # request bodies beyond this get 413
    forward_timeout: float = 10.0  # seconds, for POST /v1/auth/refresh
    client_id: str | None = None  # usage metering and API keys are on when both are set
    client_secret: str | None = field(default=None, repr=False)
    usage_flush_seconds: float = DEFAULT_FLUSH_SECONDS
    api_key_cache_seconds: float = DEFAULT_KEY_CACHE_SECONDS
    metrics_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_url("AUTHSERVER_ISSUER", self.issuer)
        if not self.audience or self.audience != self.audience.strip():
            raise ApiConfigError("AUTHSERVER_API_AUDIENCE must be a non-empty string without surrounding spaces")
        if not self.redis_url.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ApiConfigError("AUTHSERVER_REDIS_URL must be a redis://host:port/db URL (unset: in-memory counters)")
        if not _PREFIX.fullmatch(self.ratelimit_prefix):
            raise ApiConfigError("AUTHSERVER_RATELIMIT_PREFIX must be 1-64 characters of letters, digits, _ . : -")
        if bool(self.client_id) != bool(self.client_secret):
            raise ApiConfigError("AUTHSERVER_API_CLIENT_ID and AUTHSERVER_API_CLIENT_SECRET must be set together (or neither: no metering)")
        if not MIN_FLUSH_SECONDS <= self.usage_flush_seconds <= MAX_FLUSH_SECONDS:
            raise ApiConfigError(f"AUTHSERVER_USAGE_FLUSH_SECONDS must be from {MIN_FLUSH_SECONDS} to {MAX_FLUSH_SECONDS} seconds")
        if not 0 <= self.api_key_cache_seconds <= MAX_KEY_CACHE_SECONDS:
            raise ApiConfigError(f"AUTHSERVER_API_KEY_CACHE_SECONDS must be from 0 to {MAX_KEY_CACHE_SECONDS} seconds")
        try:
            check_token("AUTHSERVER_METRICS_TOKEN", self.metrics_token)
        except ValueError as exc:
            raise ApiConfigError(str(exc)) from None

    @property
    def metering(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def usage_url(self) -> str:
        return self.issuer.rstrip("/") + "/v1/usage"

    @property
    def refresh_url(self) -> str:
        return self.issuer.rstrip("/") + "/v1/auth/refresh"


def load_api_config(environ: Mapping[str, str] | None = None) -> ApiConfig:
    env = os.environ if environ is None else environ
    return ApiConfig(
        issuer=env.get("AUTHSERVER_ISSUER") or DEFAULT_ISSUER,
        audience=env.get("AUTHSERVER_API_AUDIENCE") or DEFAULT_AUDIENCE,
        redis_url=env.get("AUTHSERVER_REDIS_URL") or DEFAULT_STORAGE,
        ratelimit_prefix=env.get("AUTHSERVER_RATELIMIT_PREFIX") or DEFAULT_PREFIX,
        client_id=env.get("AUTHSERVER_API_CLIENT_ID") or None,
        client_secret=env.get("AUTHSERVER_API_CLIENT_SECRET") or None,
        usage_flush_seconds=_seconds("AUTHSERVER_USAGE_FLUSH_SECONDS", env.get("AUTHSERVER_USAGE_FLUSH_SECONDS"),
                                     DEFAULT_FLUSH_SECONDS),
        api_key_cache_seconds=_seconds("AUTHSERVER_API_KEY_CACHE_SECONDS", env.get("AUTHSERVER_API_KEY_CACHE_SECONDS"),
                                       DEFAULT_KEY_CACHE_SECONDS),
        metrics_token=env.get("AUTHSERVER_METRICS_TOKEN") or None,
    )


def _seconds(name: str, value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ApiConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if seconds != seconds:  # NaN
        raise ApiConfigError(f"{name} must be a number of seconds, not {value!r}")
    return seconds


def _check_url(name: str, value: str) -> None:
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ApiConfigError(f"{name} must be an http(s) URL without query or fragment, not {value!r}")
