"""The audit log (authserver/audit.py): each security event is one JSON line on the
`authserver.audit` logger, written once, with time, account, client, source address and request
id, and never a secret (password, client secret, API key, token) or an email address."""

from __future__ import annotations

import json
import logging

import pytest

from authserver import audit
from authserver.cli import main as cli
from authserver.oauth.keys import KeyStore

from ..conftest import PASSWORD, REDIRECT_URI, pkce_pair
from ..helpers import authorize_query, authorize_url, csrf_token, decide, login

LINE_FIELDS = {"time", "event", "account", "client", "source", "request_id"}


class AuditLines(logging.Handler):
    """The lines written while the test runs, parsed, plus their raw text to search for secrets."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.raw: list[str] = []

    def emit(self, record):
        self.raw.append(record.getMessage())

    @property
    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.raw]

    def only(self, event: str) -> dict:
        """The one line of `event` (failing when there is none, or more than one)."""
        found = [line for line in self.events if line["event"] == event]
        assert len(found) == 1, (event, self.raw)
        assert LINE_FIELDS <= set(found[0]), found[0]
        return found[0]

    def assert_free_of(self, *secrets: str) -> None:
        for secret in secrets:
            assert secret and not any(secret in line for line in self.raw), secret


@pytest.fixture
def lines():
    handler = AuditLines()
    audit.log.addHandler(handler)
    yield handler
    audit.log.removeHandler(handler)


@pytest.fixture
def signed_in(client, make_user):
    """A browser signed in as a new account; returns the account."""
    user = make_user(email="ada@example.com")
    assert login(client, user.email).status_code == 302
    return user


def session_csrf(client) -> dict:
    """The session's CSRF token as the JSON API wants it (any page with a form carries it)."""
    return {"X-CSRFToken": csrf_token(client.get("/dashboard/api-keys").get_data(as_text=True))}


def test_a_failed_sign_in_names_the_account_but_never_the_email_or_the_password(client, make_user, lines):
    user = make_user(email="ada@example.com")
    wrong_password = "not the password at all"
    assert login(client, user.email, wrong_password).status_code == 401
    assert login(client, "nobody@example.com", wrong_password).status_code == 401

    failures = [line for line in lines.events if line["event"] == "login_failed"]
    assert [(line["account"], line["reason"]) for line in failures] == [
        (user.public_id, "wrong_password"), (None, "unknown_account")]
    assert all(line["client"] is None and line["source"] == "127.0.0.1" for line in failures)
    lines.assert_free_of(wrong_password, "ada@example.com", "nobody@example.com")


def test_a_sign_in_is_recorded_once_with_the_callers_request_id(client, make_user, lines):
    user = make_user(email="ada@example.com")
    page = client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": csrf_token(page.get_data(as_text=True))},
                           headers={"X-Request-ID": "probe-42"})
    assert response.status_code == 302 and response.headers["X-Request-ID"] == "probe-42"

    line = lines.only("login_succeeded")
    assert (line["account"], line["source"], line["request_id"]) == (user.public_id, "127.0.0.1", "probe-42")
    assert "login_failed" not in {line["event"] for line in lines.events}
    lines.assert_free_of(PASSWORD, user.email)


def test_consent_granted_and_revoked(client, signed_in, make_client, lines):
    app_client, secret = make_client()
    _, challenge = pkce_pair()
    response = decide(client, authorize_url(authorize_query(app_client.client_id, challenge)), "allow")
    assert response.status_code == 302 and response.headers["Location"].startswith(REDIRECT_URI)
    granted = lines.only("consent_granted")
    assert (granted["account"], granted["client"], granted["scopes"]) == (
        signed_in.public_id, app_client.client_id, ["openid", "read:users"])

    page = client.get("/dashboard/authorized-apps").get_data(as_text=True)
    removed = client.post(f"/dashboard/authorized-apps/{app_client.client_id}/remove",
                          data={"csrf_token": csrf_token(page)})
    assert removed.status_code == 302
    revoked = lines.only("consent_revoked")
    assert (revoked["account"], revoked["client"]) == (signed_in.public_id, app_client.client_id)
    code = response.headers["Location"].split("code=")[1].split("&")[0]
    lines.assert_free_of(secret, code)


def test_api_keys_created_rotated_and_revoked(client, signed_in, lines):
    headers = session_csrf(client)
    created = client.post("/v1/api-keys", json={"name": "CI", "scopes": ["read:users"]}, headers=headers)
    assert created.status_code == 201, created.get_json()
    first = created.get_json()
    rotated = client.post(f"/v1/api-keys/{first['id']}/rotate", json={"grace_period_seconds": 0}, headers=headers)
    assert rotated.status_code == 201, rotated.get_json()
    second = rotated.get_json()
    assert client.delete(f"/v1/api-keys/{second['id']}", headers=headers).status_code == 204

    assert lines.only("api_key_created") | {"time": None, "request_id": None} == {
        "time": None, "event": "api_key_created", "account": signed_in.public_id, "client": None,
        "source": "127.0.0.1", "request_id": None, "key": first["id"]}
    rotation = lines.only("api_key_rotated")
    assert (rotation["account"], rotation["key"], rotation["replaces"]) == (signed_in.public_id, second["id"], first["id"])
    revocation = lines.only("api_key_revoked")
    assert (revocation["account"], revocation["key"]) == (signed_in.public_id, second["id"])
    lines.assert_free_of(first["key"], second["key"])


def test_a_refused_key_revocation_is_not_recorded(client, signed_in, lines):
    response = client.delete("/v1/api-keys/key_000000000000000000000000", headers=session_csrf(client))
    assert response.status_code == 404
    assert "api_key_revoked" not in {line["event"] for line in lines.events}


def test_apps_created_secret_rotated_and_deleted(client, signed_in, lines):
    headers = session_csrf(client)
    created = client.post("/v1/apps", headers=headers, json={
        "name": "My App", "redirect_uris": [REDIRECT_URI], "public": False, "scopes": ["openid"],
        "grant_types": ["authorization_code"]})
    assert created.status_code == 201, created.get_json()
    client_id, first_secret = created.get_json()["client_id"], created.get_json()["client_secret"]
    rotated = client.post(f"/v1/apps/{client_id}/rotate-secret", headers=headers)
    assert rotated.status_code == 201
    assert client.delete(f"/v1/apps/{client_id}", headers=headers).status_code == 204

    for event in ("client_created", "client_secret_rotated", "client_deleted"):
        line = lines.only(event)
        assert (line["account"], line["client"]) == (signed_in.public_id, client_id), line
    assert lines.only("client_created")["secret_issued"] is True
    lines.assert_free_of(first_secret, rotated.get_json()["client_secret"])


def test_the_clients_create_command_is_recorded_without_its_secret(app, settings_overrides, lines, monkeypatch, capsys):
    for name in ("database_url", "keys_dir", "instance_dir", "secret_key", "issuer"):  # `app`: tables emptied after
        monkeypatch.setenv(f"AUTHSERVER_{name.upper()}", settings_overrides[name])
    assert cli(["clients", "create", "--name", "Batch", "--grant-type", "client_credentials",
                "--scope", "read:users"]) == 0
    output = json.loads(capsys.readouterr().out)

    line = lines.only("client_created")
    assert (line["account"], line["client"], line["source"], line["secret_issued"]) == (
        None, output["client_id"], None, True)
    lines.assert_free_of(output["client_secret"])


def test_signing_key_rotations_by_command_and_by_schedule(tmp_path, lines):
    store = KeyStore(tmp_path / "keys")
    store.ensure_active()
    keys = store.rotate(retired_lifetime=3600, force=True)
    active = next(key.kid for key in keys if key.state == "active")
    assert lines.only("signing_key_rotated") | {"time": None} == {
        "time": None, "event": "signing_key_rotated", "account": None, "client": None, "source": None,
        "request_id": None, "kid": active, "trigger": "command", "forced": True}

    later = int(keys[0].created_at) + 10 * 86400
    assert store.rotate_if_due(max_active_age=86400, retired_lifetime=3600, min_next_age=0, now=later) == "rotated"
    scheduled = [line for line in lines.events if line.get("trigger") == "schedule"]
    assert [line["kid"] for line in scheduled] == [store.active_key().kid]
    for path in (tmp_path / "keys").glob("*.pem"):  # no private key material either
        lines.assert_free_of(path.read_text().splitlines()[1])
