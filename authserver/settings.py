"""One typed settings object, read once from AUTHSERVER_* variables and validated at start-up.

Nothing else in the code reads the environment: tests pass overrides to `load_settings`.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import dataclasses
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable and says why."""


@dataclass(frozen=True)
class Settings:
    issuer: str
    database_url: str
    keys_dir: Path
    instance_dir: Path
    secret_key: str
    api_audience: str
    trusted_proxies: int
    access_token_ttl: int
    refresh_token_ttl: int
    authorization_code_ttl: int
    max_body_bytes: int
    key_size: int
    key_reload_seconds: int
    key_rotation_days: int
    client_cache_seconds: int
    prune_interval_seconds: int
    prune_batch_size: int
    # How long a rotated refresh token still gets the same successor pair (oauth/grants.py); 0: off.
    refresh_grace_seconds: int
    # Shared store for login and sign-up throttling; None: each process counts in its own memory.
    redis_url: str | None = None
    # The Bearer token /metrics requires; None: /metrics answers loopback clients only.
    metrics_token: str | None = dataclasses.field(default=None, repr=False)

    @property
    def is_https(self) -> bool:
        return self.issuer.startswith("https://")


DEFAULTS = {
    "issuer": "http://127.0.0.1:5000",
    "api_audience": "http://127.0.0.1:5001",
    "keys_dir": "keys",
    "instance_dir": "instance",
    "trusted_proxies": "0",
    "access_token_ttl": "3600",
    "refresh_token_ttl": str(30 * 24 * 3600),
    "authorization_code_ttl": "600",
    "max_body_bytes": str(64 * 1024),
    "key_size": "2048",
    "key_reload_seconds": "5",
    "key_rotation_days": "0",
    "client_cache_seconds": "5",
    "prune_interval_seconds": "3600",
    "prune_batch_size": "1000",
    "refresh_grace_seconds": "10",
}

LOOPBACK_HOSTS = {"localhost"}


def load_settings(overrides: dict | None = None, environ=None) -> Settings:
    """Build Settings from the environment, then `overrides` (field name → value)."""
    environ = os.environ if environ is None else environ
    raw = dict(DEFAULTS)
    for field in fields(Settings):
        value = environ.get(f"AUTHSERVER_{field.name.upper()}")
        if value is not None:
            raw[field.name] = value
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(raw) - {f.name for f in fields(Settings)}
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")

    issuer = _issuer(raw["issuer"])
    instance_dir = Path(raw["instance_dir"]).resolve()
    settings = Settings(
        issuer=issuer,
        database_url=raw.get("database_url") or f"sqlite:///{instance_dir / 'authserver.db'}",
        keys_dir=Path(raw["keys_dir"]).resolve(),
        instance_dir=instance_dir,
        secret_key=raw.get("secret_key") or "",
        api_audience=_absolute_url("AUTHSERVER_API_AUDIENCE", raw["api_audience"]),
        trusted_proxies=_int("AUTHSERVER_TRUSTED_PROXIES", raw["trusted_proxies"], 0, 10),
        access_token_ttl=_int("AUTHSERVER_ACCESS_TOKEN_TTL", raw["access_token_ttl"], 60, 86400),
        refresh_token_ttl=_int("AUTHSERVER_REFRESH_TOKEN_TTL", raw["refresh_token_ttl"], 300, 366 * 86400),
        # RFC 6749 §4.1.2: a maximum authorization code lifetime of 10 minutes is RECOMMENDED.
        authorization_code_ttl=_int("AUTHSERVER_AUTHORIZATION_CODE_TTL", raw["authorization_code_ttl"], 10, 600),
        max_body_bytes=_int("AUTHSERVER_MAX_BODY_BYTES", raw["max_body_bytes"], 1024, 10 * 1024 * 1024),
        key_size=_int("AUTHSERVER_KEY_SIZE", raw["key_size"], 2048, 8192),
        # How stale a worker's signing keys may be after a rotation (see oauth/signing.py).
        key_reload_seconds=_int("AUTHSERVER_KEY_RELOAD_SECONDS", raw["key_reload_seconds"], 1, 60),
        # 0: rotate only with `authserver keys rotate`.
        key_rotation_days=_int("AUTHSERVER_KEY_ROTATION_DAYS", raw["key_rotation_days"], 0, 3650),
        # How long a worker may keep using a client it has read (storage/client_cache.py); 0: off.
        client_cache_seconds=_int("AUTHSERVER_CLIENT_CACHE_SECONDS", raw["client_cache_seconds"], 0, 60),
        # How often each worker prunes expired rows (web/prune_schedule.py); 0: off.
        prune_interval_seconds=_prune_interval(raw["prune_interval_seconds"]),
        # Rows deleted per transaction by the prune (storage/prune.py).
        prune_batch_size=_int("AUTHSERVER_PRUNE_BATCH_SIZE", raw["prune_batch_size"], 1, 100_000),
        refresh_grace_seconds=_int("AUTHSERVER_REFRESH_GRACE_SECONDS", raw["refresh_grace_seconds"], 0, 60),
        redis_url=_redis_url(raw.get("redis_url")),
        metrics_token=_metrics_token(raw.get("metrics_token")),
    )
    _check_database_url(settings.database_url)
    return settings


def with_secret_key(settings: Settings) -> Settings:
    """Fill in the session-signing key: the configured one, else one generated once into instance/."""
    if settings.secret_key:
        if len(settings.secret_key) < 32:
            raise SettingsError("AUTHSERVER_SECRET_KEY: must be at least 32 characters")
        return settings
    path = settings.instance_dir / "secret_key"
    if path.exists():
        return replace(settings, secret_key=path.read_text().strip())
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then published with link(), which fails if
    # another worker published first: nobody ever reads a half-written (empty) key.
    key = secrets.token_urlsafe(48)
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return replace(settings, secret_key=key)


def _issuer(value: str) -> str:
    url = _absolute_url("AUTHSERVER_ISSUER", value)
    parts = urlsplit(url)
    # "?" or "#" alone is still an (empty) query or fragment: RFC 8414 §2 allows neither.
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise SettingsError("AUTHSERVER_ISSUER: must not have a query or fragment")
    if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
        raise SettingsError(
            "AUTHSERVER_ISSUER: must be https:// (plain http is allowed only for a loopback host)"
        )
    return url.rstrip("/")


def is_loopback_host(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _absolute_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name}: must be an absolute http(s) URL, got {value!r}")
    return value


REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
REDIS_URL_SHAPE = "must be redis://host:port/db, rediss://host:port/db or redis+unix:///path/to/socket"


def _redis_url(value: str | None) -> str | None:
    """redis://[user:password@]host[:port][/db], rediss://… (TLS) or redis+unix:///path; unset or
    empty is None. The message never repeats the URL: it may hold a password."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        raise SettingsError(f"AUTHSERVER_REDIS_URL: {REDIS_URL_SHAPE}") from None
    database = parts.path.strip("/")
    if parts.scheme == "redis+unix":
        usable = bool(parts.path)
    else:
        usable = parts.scheme in REDIS_SCHEMES and bool(parts.hostname) and (not database or database.isdigit())
    if not usable or parts.fragment:
        raise SettingsError(f"AUTHSERVER_REDIS_URL: {REDIS_URL_SHAPE}")
    return value


def _metrics_token(value: str | None) -> str | None:
    from .metrics import check_token

    try:
        return check_token("AUTHSERVER_METRICS_TOKEN", value)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _int(name: str, value, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{name}: must be between {low} and {high}, got {number}")
    return number


def _prune_interval(value) -> int:
    interval = _int("AUTHSERVER_PRUNE_INTERVAL_SECONDS", value, 0, 7 * 86400)
    if 0 < interval < 60:
        raise SettingsError(f"AUTHSERVER_PRUNE_INTERVAL_SECONDS: must be 0 (off) or at least 60, got {interval}")
    return interval


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    # The message never repeats the URL: it may hold a password. make_url raises ValueError
    # for a bad port; get_dialect raises NoSuchModuleError (an ArgumentError) for an unknown
    # database or driver name.
    try:
        make_url(url).get_dialect()
    except (ArgumentError, ValueError):
        raise SettingsError(
            "AUTHSERVER_DATABASE_URL: not a valid SQLAlchemy URL with a known database and driver"
        ) from None
