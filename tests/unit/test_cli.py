"""The `authserver` console script, run for real as a subprocess: JSON on stdout for what it
creates, and on any error exit status 1 with exactly one line on stderr and nothing on stdout."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from authserver.registration import GRANT_TYPES

AUTHSERVER = Path(sys.executable).parent / "authserver"
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://app.example.com/callback"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)

    def assert_failed_with_one_line(self, *fragments: str) -> str:
        """Exit 1, nothing on stdout, one line on stderr holding every fragment; returns the line."""
        assert self.code == 1, self
        assert self.stdout == ""
        assert self.stderr.endswith("\n") and self.stderr.count("\n") == 1, self.stderr
        line = self.stderr.rstrip("\n")
        assert line.startswith("authserver: error: ")
        for fragment in fragments:
            assert fragment in line
        return line


@dataclass
class Instance:
    """Where one `authserver` installation keeps its state."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "authserver.db"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    def env(self, **extra: str) -> dict:
        env = {name: value for name, value in os.environ.items() if not name.startswith("AUTHSERVER_")}
        env.update(
            AUTHSERVER_DATABASE_URL=f"sqlite:///{self.database}",
            AUTHSERVER_KEYS_DIR=str(self.keys_dir),
            AUTHSERVER_INSTANCE_DIR=str(self.root / "instance"),
        )
        env.update(extra)
        return env

    def run(self, *args: str, stdin: str = "", env: dict | None = None) -> Run:
        done = subprocess.run(
            [str(AUTHSERVER), *args], input=stdin, capture_output=True, text=True,
            env=env or self.env(), cwd=self.root, timeout=120,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def rows(self, table: str) -> list[tuple]:
        with sqlite3.connect(self.database) as conn:
            return conn.execute(f"SELECT * FROM {table}").fetchall()

    def everything_stored(self) -> str:
        """Every value in every table, as text."""
        with sqlite3.connect(self.database) as conn:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return "\n".join(repr(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"'))


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Instance:
    """A migrated installation shared by this module's tests (each uses its own emails and names)."""
    installation = Instance(tmp_path_factory.mktemp("cli"))
    result = installation.run("db", "upgrade")
    assert result.code == 0, result.stderr
    return installation


def create_user(instance: Instance, email: str, *extra: str, password: str = PASSWORD) -> Run:
    return instance.run("users", "create", "--email", email, "--name", "Ada Lovelace", "--password-stdin",
                        *extra, stdin=password + "\n")


# -- db --------------------------------------------------------------------------

def test_db_upgrade_creates_the_schema_and_can_run_again(tmp_path):
    fresh = Instance(tmp_path)
    for _ in range(2):
        result = fresh.run("db", "upgrade")
        assert (result.code, result.stdout, result.stderr) == (0, "", "database is at the latest revision\n")
    with sqlite3.connect(fresh.database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "users", "clients", "consents", "authorization_codes",
            "refresh_tokens", "revoked_access_tokens"} <= tables


# -- users -------------------------------------------------------------------------

def test_users_create_prints_the_account_as_json_with_the_email_lower_cased(instance):
    result = create_user(instance, "Grace.Hopper@Example.COM", "--plan", "pro")
    assert result.code == 0, result.stderr
    account = result.json
    assert re.fullmatch(r"user_[0-9a-f]{24}", account["id"])
    assert account == {"id": account["id"], "email": "grace.hopper@example.com", "name": "Ada Lovelace", "plan": "pro"}


def test_users_create_defaults_to_the_free_plan(instance):
    result = create_user(instance, "free.plan@example.com")
    assert result.code == 0, result.stderr
    assert result.json["plan"] == "free"


def test_users_create_with_an_email_taken_in_another_case_fails_with_one_line(instance):
    assert create_user(instance, "katherine@example.com").code == 0
    before = instance.rows("users")

    result = create_user(instance, "Katherine@EXAMPLE.com")

    result.assert_failed_with_one_line("an account with this email already exists")
    assert instance.rows("users") == before


USER_ERRORS = [
    pytest.param(["--email", "short.pw@example.com"], "short\n", "at least 8 characters", id="short-password"),
    pytest.param(["--email", "not-an-email"], PASSWORD + "\n", "--email must be an email address", id="bad-email"),
]


@pytest.mark.parametrize(("args", "stdin", "message"), USER_ERRORS)
def test_users_create_refuses_bad_input_with_one_line(instance, args, stdin, message):
    result = instance.run("users", "create", "--name", "N", "--password-stdin", *args, stdin=stdin)
    result.assert_failed_with_one_line(message)


# -- users set-plan ---------------------------------------------------------------

def set_plan(instance: Instance, email: str, plan: str, *extra: str) -> Run:
    return instance.run("users", "set-plan", "--email", email, "--plan", plan, *extra)


def stored_plan(instance: Instance, email: str) -> tuple:
    with sqlite3.connect(instance.database) as conn:
        return conn.execute("SELECT plan, rate_limit_per_hour, rate_limit_per_minute FROM users WHERE email = ?",
                            (email,)).fetchone()


def test_users_set_plan_enterprise_with_custom_limits(instance):
    account = create_user(instance, "enterprise.custom@example.com").json

    result = set_plan(instance, "Enterprise.Custom@Example.com", "enterprise", "--hourly", "50000", "--burst", "2000")

    assert result.code == 0, result.stderr
    assert result.json == {"id": account["id"], "email": "enterprise.custom@example.com", "plan": "enterprise",
                           "rate_limits": {"per_hour": 50000, "per_minute": 2000}}
    assert stored_plan(instance, "enterprise.custom@example.com") == ("enterprise", 50000, 2000)


def test_users_set_plan_enterprise_with_one_limit_leaves_the_other_unlimited(instance):
    create_user(instance, "enterprise.burst@example.com")
    result = set_plan(instance, "enterprise.burst@example.com", "enterprise", "--burst", "300")
    assert result.code == 0, result.stderr
    assert result.json["rate_limits"] == {"per_hour": None, "per_minute": 300}
    assert stored_plan(instance, "enterprise.burst@example.com") == ("enterprise", None, 300)


def test_users_set_plan_states_the_whole_plan(instance):
    """Enterprise without options is unlimited: earlier custom limits go; so do they on free/pro."""
    create_user(instance, "enterprise.states@example.com")
    assert set_plan(instance, "enterprise.states@example.com", "enterprise", "--hourly", "9000").code == 0

    result = set_plan(instance, "enterprise.states@example.com", "enterprise")

    assert result.code == 0, result.stderr
    assert (result.json["plan"], result.json["rate_limits"]) == ("enterprise", None)
    assert stored_plan(instance, "enterprise.states@example.com") == ("enterprise", None, None)


@pytest.mark.parametrize("plan", ["free", "pro"])
def test_users_set_plan_to_free_or_pro_clears_custom_limits(instance, plan):
    email = f"downgrade.{plan}@example.com"
    create_user(instance, email)
    assert set_plan(instance, email, "enterprise", "--hourly", "50000", "--burst", "2000").code == 0

    result = set_plan(instance, email, plan)

    assert result.code == 0, result.stderr
    assert (result.json["plan"], result.json["rate_limits"]) == (plan, None)
    assert stored_plan(instance, email) == (plan, None, None)


SET_PLAN_ERRORS = [
    pytest.param(["--plan", "pro", "--hourly", "100"], "--hourly and --burst are for --plan enterprise only",
                 id="hourly-on-pro"),
    pytest.param(["--plan", "free", "--burst", "10"], "--hourly and --burst are for --plan enterprise only",
                 id="burst-on-free"),
    pytest.param(["--plan", "enterprise", "--hourly", "0"], "from 1 to 1000000000", id="zero"),
    pytest.param(["--plan", "enterprise", "--burst", "-5"], "from 1 to 1000000000", id="negative"),
    pytest.param(["--plan", "enterprise", "--hourly", "1.5"], "from 1 to 1000000000", id="fraction"),
    pytest.param(["--plan", "enterprise", "--hourly", "lots"], "from 1 to 1000000000", id="not-a-number"),
    pytest.param(["--plan", "enterprise", "--hourly", "1000000001"], "from 1 to 1000000000", id="too-large"),
    pytest.param(["--plan", "enterprise", "--hourly", "99999999999999999999"], "from 1 to 1000000000",
                 id="far-too-large"),
    pytest.param(["--plan", "enterprise", "--hourly", "100", "--burst", "101"], "cannot exceed", id="burst-over-hour"),
]


@pytest.mark.parametrize(("args", "message"), SET_PLAN_ERRORS)
def test_users_set_plan_refuses_bad_input_with_one_line_and_changes_nothing(instance, args, message):
    email = "set.plan.refused@example.com"
    if stored_plan(instance, email) is None:  # the first case creates it
        assert create_user(instance, email, "--plan", "pro").code == 0
    before = instance.rows("users")

    result = instance.run("users", "set-plan", "--email", email, *args)

    result.assert_failed_with_one_line(message)
    assert instance.rows("users") == before


def test_users_set_plan_of_an_unknown_email_fails_with_one_line(instance):
    before = instance.rows("users")
    result = set_plan(instance, "nobody.here@example.com", "enterprise", "--hourly", "100")
    result.assert_failed_with_one_line("no account has this email")
    assert instance.rows("users") == before


# -- clients -----------------------------------------------------------------------

def test_clients_create_confidential_prints_the_secret_once_and_stores_only_its_digest(instance):
    result = instance.run("clients", "create", "--name", "Billing App", "--redirect-uri", REDIRECT_URI,
                          "--grant-type", "authorization_code", "refresh_token", "--scope", "openid  read:users")
    assert result.code == 0, result.stderr
    created = result.json
    secret = created["client_secret"]
    assert re.fullmatch(r"client_[0-9a-f]{24}", created["client_id"])
    assert secret.startswith("tds_") and len(secret) >= len("tds_") + 43  # 256 bits, base64url
    assert created == {
        "client_id": created["client_id"],
        "client_secret": secret,
        "name": "Billing App",
        "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid read:users",
        "token_endpoint_auth_method": "client_secret_basic",
        "require_pkce": True,
    }

    stored = instance.everything_stored()
    assert secret not in stored
    assert secret.removeprefix("tds_") not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() in stored
    # Not in the database files either (the journal included).
    for path in instance.root.glob("authserver.db*"):
        assert secret.encode() not in path.read_bytes(), path.name


def test_clients_create_public_prints_no_secret(instance):
    result = instance.run("clients", "create", "--name", "Mobile App", "--public",
                          "--redirect-uri", "com.example.app:/callback", "http://127.0.0.1:8765/callback",
                          "--grant-type", "authorization_code", "refresh_token", "--scope", "openid profile")
    assert result.code == 0, result.stderr
    created = result.json
    assert "client_secret" not in created
    assert created == {
        "client_id": created["client_id"],
        "name": "Mobile App",
        "redirect_uris": ["com.example.app:/callback", "http://127.0.0.1:8765/callback"],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile",
        "token_endpoint_auth_method": "none",
        "require_pkce": True,
    }


BAD_REGISTRATIONS = [
    pytest.param(["--redirect-uri", "http://example.com/cb", "--grant-type", "authorization_code"],
                 "redirect URI 'http://example.com/cb': must be https", id="http-redirect-on-a-public-host"),
    pytest.param(["--redirect-uri", "https://app.example.com/cb#frag", "--grant-type", "authorization_code"],
                 "must not contain a fragment", id="redirect-with-fragment"),
    pytest.param(["--grant-type", "authorization_code"],
                 "redirect URI: the authorization_code grant needs at least one", id="code-grant-without-redirect"),
    pytest.param(["--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code", "--scope", "openid admin"],
                 "scope: unknown scope(s) admin", id="unknown-scope"),
    pytest.param(["--public", "--grant-type", "client_credentials"],
                 "grant type: a public client cannot use client_credentials", id="public-client-credentials"),
    pytest.param(["--public", "--no-pkce", "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code"],
                 "PKCE: public clients always require it", id="public-without-pkce"),
    pytest.param(["--redirect-uri", REDIRECT_URI, "--grant-type", "password"],
                 f"grant type: choose from {', '.join(GRANT_TYPES)}", id="unknown-grant-type-password"),
    pytest.param(["--redirect-uri", REDIRECT_URI, "--grant-type", "implicit"],
                 f"grant type: choose from {', '.join(GRANT_TYPES)}", id="unknown-grant-type-implicit"),
    pytest.param(["--grant-type", "client_credentials", "--auth-method", "private_key_jwt"],
                 "auth method: choose from client_secret_basic, client_secret_post", id="unknown-auth-method"),
]


@pytest.mark.parametrize(("args", "message"), BAD_REGISTRATIONS)
def test_clients_create_refuses_a_bad_registration_with_one_line(instance, args, message):
    if "--scope" not in args:
        args = [*args, "--scope", "openid"]
    before = instance.rows("clients")
    result = instance.run("clients", "create", "--name", "Bad App", *args)
    result.assert_failed_with_one_line(message)
    assert instance.rows("clients") == before


# -- keys --------------------------------------------------------------------------

def test_keys_generate_then_list(tmp_path):
    fresh = Instance(tmp_path)
    started = datetime.now(timezone.utc).replace(microsecond=0)

    first, second = fresh.run("keys", "generate"), fresh.run("keys", "generate")
    listed = fresh.run("keys", "list")

    assert (first.code, second.code, listed.code) == (0, 0, 0), first.stderr + second.stderr + listed.stderr
    assert (first.json["state"], second.json["state"]) == ("active", "next")
    assert listed.json == {"keys": [first.json, second.json]}
    for key in listed.json["keys"]:
        assert set(key) == {"kid", "state", "created_at", "retired_at"}
        assert key["retired_at"] is None
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key["kid"])  # a base64url SHA-256 thumbprint
        created = datetime.fromisoformat(key["created_at"])
        assert created.utcoffset() == timedelta(0)
        assert started - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    assert sorted(p.name for p in fresh.keys_dir.glob("*.pem")) == sorted(f"{k['kid']}.pem" for k in listed.json["keys"])


def test_keys_list_of_an_empty_store(tmp_path):
    result = Instance(tmp_path).run("keys", "list")
    assert (result.code, result.json) == (0, {"keys": []})


# -- bad settings --------------------------------------------------------------------

COMMANDS = [
    pytest.param(["db", "upgrade"], "", id="db-upgrade"),
    pytest.param(["users", "create", "--email", "x@example.com", "--name", "X", "--password-stdin"],
                 PASSWORD + "\n", id="users-create"),
    pytest.param(["clients", "create", "--name", "X", "--grant-type", "client_credentials", "--scope", "openid"],
                 "", id="clients-create"),
    pytest.param(["keys", "generate"], "", id="keys-generate"),
    pytest.param(["keys", "list"], "", id="keys-list"),
]


@pytest.mark.parametrize(("args", "stdin"), COMMANDS)
def test_a_bad_setting_stops_every_command_with_one_line_naming_it(tmp_path, args, stdin):
    fresh = Instance(tmp_path)
    result = fresh.run(*args, stdin=stdin, env=fresh.env(AUTHSERVER_ACCESS_TOKEN_TTL="abc"))
    line = result.assert_failed_with_one_line()
    assert line == "authserver: error: AUTHSERVER_ACCESS_TOKEN_TTL: must be a whole number, got 'abc'"
    assert not fresh.keys_dir.exists()
    assert not fresh.database.exists()


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://admin:Sup3rS3cret@db.example.com:notaport/auth",
    "nosuchdb://admin:Sup3rS3cret@db.example.com/auth",
], ids=["bad-port", "unknown-database"])
def test_a_bad_database_url_is_named_without_its_password(tmp_path, url):
    fresh = Instance(tmp_path)
    result = fresh.run("db", "upgrade", env=fresh.env(AUTHSERVER_DATABASE_URL=url))
    line = result.assert_failed_with_one_line("AUTHSERVER_DATABASE_URL")
    assert "Sup3rS3cret" not in line
