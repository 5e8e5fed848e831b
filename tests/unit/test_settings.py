"""Settings: defaults, every AUTHSERVER_* variable, validation with messages naming the variable,
and the session-signing key generated once into instance/."""

from __future__ import annotations

import stat
import threading
import traceback
from dataclasses import fields
from pathlib import Path

import pytest

from authserver.settings import Settings, SettingsError, load_settings, with_secret_key


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Relative default paths resolve against the working directory: make it a fresh one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- defaults and variables ----------------------------------------------------

def test_defaults(workdir):
    settings = load_settings(environ={})
    assert settings == Settings(
        issuer="http://127.0.0.1:5000",
        database_url=f"sqlite:///{workdir / 'instance' / 'authserver.db'}",
        keys_dir=workdir / "keys",
        instance_dir=workdir / "instance",
        secret_key="",
        api_audience="http://127.0.0.1:5001",
        trusted_proxies=0,
        access_token_ttl=3600,
        refresh_token_ttl=30 * 24 * 3600,
        authorization_code_ttl=600,
        max_body_bytes=64 * 1024,
        key_size=2048,
        key_reload_seconds=5,
        key_rotation_days=0,
        client_cache_seconds=5,
        prune_interval_seconds=3600,
        prune_batch_size=1000,
        refresh_grace_seconds=10,
        redis_url=None,
    )
    assert settings.is_https is False


def test_the_process_environment_is_not_read_when_environ_is_given(workdir, monkeypatch):
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_TTL", "120")
    assert load_settings(environ={}).access_token_ttl == 3600
    assert load_settings().access_token_ttl == 120


# variable, value, field, expected value
VARIABLES = [
    ("AUTHSERVER_ISSUER", "https://auth.example.com", "issuer", "https://auth.example.com"),
    ("AUTHSERVER_DATABASE_URL", "postgresql+psycopg://auth:pw@db.internal:5432/auth", "database_url",
     "postgresql+psycopg://auth:pw@db.internal:5432/auth"),
    ("AUTHSERVER_KEYS_DIR", "/srv/authserver/keys", "keys_dir", Path("/srv/authserver/keys")),
    ("AUTHSERVER_INSTANCE_DIR", "/srv/authserver/instance", "instance_dir", Path("/srv/authserver/instance")),
    ("AUTHSERVER_SECRET_KEY", "s" * 40, "secret_key", "s" * 40),
    ("AUTHSERVER_API_AUDIENCE", "https://api.example.com", "api_audience", "https://api.example.com"),
    ("AUTHSERVER_TRUSTED_PROXIES", "2", "trusted_proxies", 2),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "900", "access_token_ttl", 900),
    ("AUTHSERVER_REFRESH_TOKEN_TTL", "86400", "refresh_token_ttl", 86400),
    ("AUTHSERVER_AUTHORIZATION_CODE_TTL", "60", "authorization_code_ttl", 60),
    ("AUTHSERVER_MAX_BODY_BYTES", "2048", "max_body_bytes", 2048),
    ("AUTHSERVER_KEY_SIZE", "3072", "key_size", 3072),
    ("AUTHSERVER_KEY_RELOAD_SECONDS", "2", "key_reload_seconds", 2),
    ("AUTHSERVER_KEY_ROTATION_DAYS", "90", "key_rotation_days", 90),
    ("AUTHSERVER_CLIENT_CACHE_SECONDS", "0", "client_cache_seconds", 0),
    ("AUTHSERVER_PRUNE_INTERVAL_SECONDS", "900", "prune_interval_seconds", 900),
    ("AUTHSERVER_PRUNE_BATCH_SIZE", "500", "prune_batch_size", 500),
    ("AUTHSERVER_REFRESH_GRACE_SECONDS", "0", "refresh_grace_seconds", 0),
    ("AUTHSERVER_REDIS_URL", "redis://cache.internal:6380/2", "redis_url", "redis://cache.internal:6380/2"),
    ("AUTHSERVER_METRICS_TOKEN", "m" * 24, "metrics_token", "m" * 24),
]


@pytest.mark.parametrize(("variable", "value", "field", "expected"), VARIABLES, ids=[v[0] for v in VARIABLES])
def test_each_variable_is_read(workdir, variable, value, field, expected):
    assert getattr(load_settings(environ={variable: value}), field) == expected


def test_every_setting_has_a_variable_in_the_table_above():
    assert {f"AUTHSERVER_{f.name.upper()}" for f in fields(Settings)} == {v[0] for v in VARIABLES}


def test_the_metrics_token_is_not_in_the_settings_repr(workdir):
    assert "m" * 24 not in repr(load_settings(environ={"AUTHSERVER_METRICS_TOKEN": "m" * 24}))


def test_relative_directories_resolve_against_the_working_directory(workdir):
    settings = load_settings(environ={"AUTHSERVER_KEYS_DIR": "k", "AUTHSERVER_INSTANCE_DIR": "var/inst"})
    assert settings.keys_dir == workdir / "k"
    assert settings.instance_dir == workdir / "var" / "inst"
    assert settings.database_url == f"sqlite:///{workdir / 'var' / 'inst' / 'authserver.db'}"


def test_overrides_win_over_the_environment(workdir):
    settings = load_settings({"access_token_ttl": 120}, environ={"AUTHSERVER_ACCESS_TOKEN_TTL": "900"})
    assert settings.access_token_ttl == 120


def test_an_unknown_override_is_refused(workdir):
    with pytest.raises(SettingsError, match=r"^unknown setting\(s\): acces_token_ttl$"):
        load_settings({"acces_token_ttl": 120}, environ={})


# -- issuer ----------------------------------------------------------------------

ACCEPTED_ISSUERS = [
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("http://127.0.0.1", "http://127.0.0.1"),
    ("http://[::1]:5000", "http://[::1]:5000"),
    ("http://localhost:5000", "http://localhost:5000"),
    ("http://localhost", "http://localhost"),
    ("https://auth.example.com", "https://auth.example.com"),
    ("https://auth.example.com/", "https://auth.example.com"),
    ("https://auth.example.com/tenant-a", "https://auth.example.com/tenant-a"),
    ("https://10.0.0.5:8443", "https://10.0.0.5:8443"),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED_ISSUERS, ids=[a[0] for a in ACCEPTED_ISSUERS])
def test_issuer_accepted(workdir, value, expected):
    settings = load_settings(environ={"AUTHSERVER_ISSUER": value})
    assert settings.issuer == expected
    assert settings.is_https is expected.startswith("https://")


REFUSED_ISSUERS = [
    ("http://auth.example.com", "must be https://"),
    ("http://10.0.0.5:5000", "must be https://"),
    ("http://0.0.0.0:5000", "must be https://"),
    ("http://localhost.example.com", "must be https://"),
    ("http://127.0.0.1.nip.io", "must be https://"),
    ("http://[::2]:5000", "must be https://"),
    ("ftp://127.0.0.1", "must be an absolute http(s) URL"),
    ("auth.example.com", "must be an absolute http(s) URL"),
    ("https://", "must be an absolute http(s) URL"),
    ("https://auth.example.com?tenant=a", "must not have a query or fragment"),
    ("https://auth.example.com/#top", "must not have a query or fragment"),
    ("https://auth.example.com?", "must not have a query or fragment"),
    ("https://auth.example.com#", "must not have a query or fragment"),
]


@pytest.mark.parametrize(("value", "reason"), REFUSED_ISSUERS, ids=[r[0] for r in REFUSED_ISSUERS])
def test_issuer_refused(workdir, value, reason):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"AUTHSERVER_ISSUER": value})
    message = str(caught.value)
    assert message.startswith("AUTHSERVER_ISSUER: ")
    assert reason in message


@pytest.mark.parametrize("value", ["api.example.com", "ftp://api.example.com", "https://"])
def test_api_audience_must_be_an_absolute_url(workdir, value):
    with pytest.raises(SettingsError, match=r"^AUTHSERVER_API_AUDIENCE: must be an absolute http\(s\) URL"):
        load_settings(environ={"AUTHSERVER_API_AUDIENCE": value})


# -- integers ----------------------------------------------------------------------

INTEGER_VARIABLES = [
    "AUTHSERVER_TRUSTED_PROXIES",
    "AUTHSERVER_ACCESS_TOKEN_TTL",
    "AUTHSERVER_REFRESH_TOKEN_TTL",
    "AUTHSERVER_AUTHORIZATION_CODE_TTL",
    "AUTHSERVER_MAX_BODY_BYTES",
    "AUTHSERVER_KEY_SIZE",
    "AUTHSERVER_KEY_RELOAD_SECONDS",
    "AUTHSERVER_KEY_ROTATION_DAYS",
    "AUTHSERVER_CLIENT_CACHE_SECONDS",
    "AUTHSERVER_REFRESH_GRACE_SECONDS",
]


@pytest.mark.parametrize("variable", INTEGER_VARIABLES)
@pytest.mark.parametrize("value", ["abc", "", "1.5", "0x10", "ten"])
def test_an_integer_variable_that_is_not_a_whole_number_is_refused(workdir, variable, value):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={variable: value})
    assert str(caught.value) == f"{variable}: must be a whole number, got {value!r}"


# variable, value, low, high
OUT_OF_RANGE = [
    ("AUTHSERVER_TRUSTED_PROXIES", "-1", 0, 10),
    ("AUTHSERVER_TRUSTED_PROXIES", "11", 0, 10),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "59", 60, 86400),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "86401", 60, 86400),
    ("AUTHSERVER_REFRESH_TOKEN_TTL", "299", 300, 366 * 86400),
    ("AUTHSERVER_REFRESH_TOKEN_TTL", str(366 * 86400 + 1), 300, 366 * 86400),
    ("AUTHSERVER_AUTHORIZATION_CODE_TTL", "9", 10, 600),
    ("AUTHSERVER_AUTHORIZATION_CODE_TTL", "601", 10, 600),
    ("AUTHSERVER_MAX_BODY_BYTES", "1023", 1024, 10 * 1024 * 1024),
    ("AUTHSERVER_MAX_BODY_BYTES", str(10 * 1024 * 1024 + 1), 1024, 10 * 1024 * 1024),
    ("AUTHSERVER_KEY_SIZE", "1024", 2048, 8192),
    ("AUTHSERVER_KEY_SIZE", "8193", 2048, 8192),
    ("AUTHSERVER_KEY_RELOAD_SECONDS", "0", 1, 60),
    ("AUTHSERVER_KEY_RELOAD_SECONDS", "61", 1, 60),
    ("AUTHSERVER_KEY_ROTATION_DAYS", "-1", 0, 3650),
    ("AUTHSERVER_KEY_ROTATION_DAYS", "3651", 0, 3650),
    ("AUTHSERVER_CLIENT_CACHE_SECONDS", "-1", 0, 60),
    ("AUTHSERVER_CLIENT_CACHE_SECONDS", "61", 0, 60),
    ("AUTHSERVER_REFRESH_GRACE_SECONDS", "-1", 0, 60),
    ("AUTHSERVER_REFRESH_GRACE_SECONDS", "61", 0, 60),
]


@pytest.mark.parametrize(("variable", "value", "low", "high"), OUT_OF_RANGE,
                         ids=[f"{v[0]}={v[1]}" for v in OUT_OF_RANGE])
def test_an_integer_out_of_range_is_refused(workdir, variable, value, low, high):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={variable: value})
    assert str(caught.value) == f"{variable}: must be between {low} and {high}, got {int(value)}"


@pytest.mark.parametrize(("variable", "value", "low", "high"), OUT_OF_RANGE,
                         ids=[f"{v[0]}={v[1]}" for v in OUT_OF_RANGE])
def test_the_bounds_themselves_are_accepted(workdir, variable, value, low, high):
    field = variable.removeprefix("AUTHSERVER_").lower()
    for bound in (low, high):
        assert getattr(load_settings(environ={variable: str(bound)}), field) == bound


# -- database URL ----------------------------------------------------------------

PASSWORD = "s3cr3t-Pa55word"
BAD_DATABASE_URLS = [
    ("not-a-url", f"this is not a URL {PASSWORD}"),
    ("port-not-a-number", f"postgresql://admin:{PASSWORD}@db.example.com:notaport/auth"),
    ("unclosed-ipv6-bracket", f"postgresql://admin:{PASSWORD}@[::1/auth"),
    ("unknown-dialect", f"nosuchdb://admin:{PASSWORD}@db.example.com/auth"),
    ("unknown-driver", f"postgresql+nosuchdriver://admin:{PASSWORD}@db.example.com/auth"),
]


@pytest.mark.parametrize("url", [b[1] for b in BAD_DATABASE_URLS], ids=[b[0] for b in BAD_DATABASE_URLS])
def test_a_bad_database_url_is_refused_without_showing_the_password(workdir, url):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"AUTHSERVER_DATABASE_URL": url})
    assert str(caught.value).startswith("AUTHSERVER_DATABASE_URL: ")
    # Not in the message, nor anywhere in the traceback a crash would print.
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


# -- Redis URL -------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "redis://127.0.0.1", f"redis://:{PASSWORD}@cache.internal:6379/1",
    f"rediss://default:{PASSWORD}@cache.example.com:6380/0", "redis+unix:///run/redis/redis.sock",
])
def test_a_redis_url_is_accepted(workdir, url):
    assert load_settings(environ={"AUTHSERVER_REDIS_URL": url}).redis_url == url


def test_an_empty_redis_url_means_in_memory(workdir):
    assert load_settings(environ={"AUTHSERVER_REDIS_URL": ""}).redis_url is None


BAD_REDIS_URLS = [
    ("other-scheme", f"http://admin:{PASSWORD}@cache.internal:6379/0"),
    ("no-host", f"redis://:{PASSWORD}@:6379/0"),
    ("port-not-a-number", f"redis://:{PASSWORD}@cache.internal:port/0"),
    ("port-out-of-range", f"redis://:{PASSWORD}@cache.internal:70000/0"),
    ("database-not-a-number", f"redis://:{PASSWORD}@cache.internal:6379/zero"),
    ("unix-without-path", "redis+unix://"),
    ("no-scheme", f"cache.internal:6379 {PASSWORD}"),
]


@pytest.mark.parametrize("url", [b[1] for b in BAD_REDIS_URLS], ids=[b[0] for b in BAD_REDIS_URLS])
def test_a_bad_redis_url_is_refused_without_showing_the_password(workdir, url):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"AUTHSERVER_REDIS_URL": url})
    assert str(caught.value).startswith("AUTHSERVER_REDIS_URL: ")
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


# -- secret key ------------------------------------------------------------------

def test_secret_key_is_generated_once_into_the_instance_dir_with_mode_0600(tmp_path):
    instance = tmp_path / "instance"
    settings = load_settings(environ={"AUTHSERVER_INSTANCE_DIR": str(instance)})

    first = with_secret_key(settings)
    path = instance / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.secret_key
    assert len(first.secret_key) >= 32

    second = with_secret_key(settings)
    assert second.secret_key == first.secret_key
    assert sorted(p.name for p in instance.iterdir()) == ["secret_key"]


def test_secret_key_generated_by_many_starting_workers_at_once_is_one_key(tmp_path):
    """Workers starting together must agree on one key, never read a half-written file."""
    for attempt in range(20):
        instance = tmp_path / f"instance-{attempt}"
        settings = load_settings(environ={"AUTHSERVER_INSTANCE_DIR": str(instance)})
        results: list[str] = []
        barrier = threading.Barrier(8)

        def start_worker():
            barrier.wait()
            results.append(with_secret_key(settings).secret_key)

        threads = [threading.Thread(target=start_worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8
        assert len(set(results)) == 1, f"attempt {attempt}: workers got different keys"
        assert len(results[0]) >= 32
        assert (instance / "secret_key").read_text() == results[0]
        assert sorted(p.name for p in instance.iterdir()) == ["secret_key"]


def test_a_configured_secret_key_is_used_and_nothing_is_written(tmp_path):
    key = "k" * 32
    settings = load_settings(environ={"AUTHSERVER_SECRET_KEY": key, "AUTHSERVER_INSTANCE_DIR": str(tmp_path / "i")})
    assert with_secret_key(settings).secret_key == key
    assert not (tmp_path / "i").exists()


@pytest.mark.parametrize("key", ["short", "k" * 31], ids=["5-chars", "31-chars"])
def test_a_too_short_secret_key_is_refused(tmp_path, key):
    settings = load_settings(environ={"AUTHSERVER_SECRET_KEY": key, "AUTHSERVER_INSTANCE_DIR": str(tmp_path)})
    with pytest.raises(SettingsError) as caught:
        with_secret_key(settings)
    assert str(caught.value) == "AUTHSERVER_SECRET_KEY: must be at least 32 characters"
