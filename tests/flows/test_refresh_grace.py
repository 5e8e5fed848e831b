"""Refresh rotation's grace window (AUTHSERVER_REFRESH_GRACE_SECONDS): a rotated token presented
again by its client within the window gets the same successor pair, kept sealed under the token;
after the window, or with a grace of 0, a replay revokes the whole family."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select, text, update

from authserver.credentials import digest
from authserver.oauth import successor
from authserver.storage.models import RefreshToken

from .tokens import refresh, user_tokens

GRACE = 10
TOKENS = ("access_token", "refresh_token", "id_token")


@pytest.fixture
def grace():
    return GRACE


@pytest.fixture
def settings_overrides(settings_overrides, grace):
    return {**settings_overrides, "refresh_grace_seconds": grace}


@pytest.fixture
def confidential(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client()
    return row.client_id, secret


class Rows:
    """The refresh_tokens table, read and changed directly (not through the app)."""

    def __init__(self, url: str):
        self.engine = create_engine(url)

    def of(self, token: str) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(RefreshToken.__table__).where(RefreshToken.digest == digest(token)))
                        .mappings().one())

    def family(self, token: str) -> list[dict]:
        family = self.of(token)["family"]
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(
                select(RefreshToken.__table__).where(RefreshToken.family == family)).mappings()]

    def backdate_use(self, token: str, seconds: int) -> None:
        """As if the token had been rotated `seconds` ago: its grace window is over."""
        with self.engine.begin() as conn:
            conn.execute(update(RefreshToken).where(RefreshToken.digest == digest(token))
                         .values(used_at=RefreshToken.used_at - seconds))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM refresh_tokens")).scalar()


@pytest.fixture
def rows(database_url):
    rows = Rows(database_url)
    yield rows
    rows.engine.dispose()


def tokens_of(body: dict) -> dict:
    return {name: body.get(name) for name in TOKENS}


def test_a_retry_within_the_window_gets_the_same_pair_issued_once(client, confidential, rows):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    rotated = refresh(client, client_id, secret, first["refresh_token"])
    assert rotated.status_code == 200, rotated.get_json()
    stored = rows.count()

    retried = refresh(client, client_id, secret, first["refresh_token"])
    assert retried.status_code == 200, retried.get_json()
    assert retried.headers["Cache-Control"] == "no-store"
    assert retried.get_json()["id_token"]  # the openid scope: the ID token is replayed too
    assert tokens_of(retried.get_json()) == tokens_of(rotated.get_json())
    assert retried.get_json() == rotated.get_json()  # the whole response as first sent
    assert rows.count() == stored  # issued once: no new row
    assert [row["revoked_at"] for row in rows.family(first["refresh_token"])] == [None, None]

    # The successor is live and rotates as usual.
    onward = refresh(client, client_id, secret, rotated.get_json()["refresh_token"])
    assert onward.status_code == 200, onward.get_json()


def test_the_sealed_successor_reveals_nothing_without_the_token(client, confidential, rows):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    body = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    row = rows.of(first["refresh_token"])
    sealed = row["successor"]

    assert sealed and sealed != json.dumps(body)
    for name in TOKENS:
        assert body[name] not in sealed
        for part in body[name].split("."):  # nor any segment of the JWTs
            assert part not in sealed
    binding = f"refresh_tokens/{row['id']}/{row['family']}"
    # Opens with the presented token only: not with another token, not with what the database keeps
    # of the token (its digest), not for another row.
    assert successor.unseal(first["refresh_token"], binding, sealed) == body
    assert successor.unseal(body["refresh_token"], binding, sealed) is None
    assert successor.unseal(row["digest"], binding, sealed) is None
    assert successor.unseal(first["refresh_token"], f"refresh_tokens/{row['id'] + 1}/{row['family']}", sealed) is None
    # Nor once altered.
    altered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert successor.unseal(first["refresh_token"], binding, altered) is None


def test_a_replay_after_the_window_revokes_the_family_and_is_audited(client, confidential, rows, audit_lines):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    rows.backdate_use(first["refresh_token"], GRACE + 1)

    replay = refresh(client, client_id, secret, first["refresh_token"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert all(row["revoked_at"] is not None for row in rows.family(first["refresh_token"]))
    assert refresh(client, client_id, secret, second["refresh_token"]).get_json()["error"] == "invalid_grant"

    [line] = [line for line in audit_lines if line["event"] == "refresh_token_reuse_detected"]
    assert line["client"] == client_id and line["account"].startswith("user_")
    assert line["family"] == rows.of(first["refresh_token"])["family"]
    text_of_line = json.dumps(line)
    for secret_value in (first["refresh_token"], digest(first["refresh_token"]), second["refresh_token"], secret):
        assert secret_value not in text_of_line


@pytest.mark.parametrize("grace", [0])
def test_with_a_grace_of_zero_any_reuse_revokes_the_family(client, confidential, rows, audit_lines):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    assert rows.of(first["refresh_token"])["successor"] is None  # nothing kept

    replay = refresh(client, client_id, secret, first["refresh_token"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert refresh(client, client_id, secret, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert [line["event"] for line in audit_lines if "reuse" in line["event"]] == ["refresh_token_reuse_detected"]


def test_a_retry_by_another_client_is_reuse(client, confidential, make_client, rows):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    other, other_secret = make_client(name="Other App")

    stolen = refresh(client, other.client_id, other_secret, first["refresh_token"])
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    assert refresh(client, client_id, secret, second["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_no_retry_once_the_family_is_revoked(client, confidential):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    revoked = client.post("/oauth/revoke", data={"token": second["refresh_token"]}, auth=(client_id, secret))
    assert revoked.status_code == 200

    retried = refresh(client, client_id, secret, first["refresh_token"])
    assert retried.status_code == 400 and retried.get_json()["error"] == "invalid_grant"


def test_no_retry_for_a_disabled_account(client, app, confidential):
    from authserver.storage.db import session
    from authserver.storage.users import find_by_email

    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    assert refresh(client, client_id, secret, first["refresh_token"]).status_code == 200
    with app.app_context():
        find_by_email("ada@example.com").is_active = False
        session().commit()
    retried = refresh(client, client_id, secret, first["refresh_token"])
    assert retried.status_code == 400 and retried.get_json()["error"] == "invalid_grant"

