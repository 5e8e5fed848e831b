"""refresh_token grant: opaque, stored hashed, rotated on every use; reuse (after the grace window)
revokes the family."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy import create_engine, text

from authserver.credentials import digest

from .tokens import refresh, user_tokens


@pytest.fixture
def confidential(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client()
    return row.client_id, secret


def test_refresh_rotates_and_returns_a_new_pair(client, confidential):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    response = refresh(client, client_id, secret, first["refresh_token"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["scope"] == "openid read:users"


def test_reusing_a_rotated_token_fails_and_revokes_the_family(client, confidential, database_url):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    second = refresh(client, client_id, secret, first["refresh_token"]).get_json()
    # Rotated an hour ago: past the grace window, in which a retry gets the same pair (test_refresh_grace.py).
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE refresh_tokens SET used_at = used_at - 3600 WHERE digest = :digest"),
                     {"digest": digest(first["refresh_token"])})
    engine.dispose()

    reuse = refresh(client, client_id, secret, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.get_json()["error"] == "invalid_grant"
    # The legitimate successor is revoked too: reuse means the token leaked.
    successor = refresh(client, client_id, secret, second["refresh_token"])
    assert successor.get_json()["error"] == "invalid_grant"


def test_scope_can_be_narrowed_but_not_widened(client, confidential):
    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com", scope="openid read:users")
    narrowed = refresh(client, client_id, secret, first["refresh_token"], scope="read:users")
    assert narrowed.status_code == 200
    claims = jwt.decode(narrowed.get_json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == ["read:users"]
    # The grant keeps its original scope: the next refresh may ask for all of it again.
    full = refresh(client, client_id, secret, narrowed.get_json()["refresh_token"])
    assert full.get_json()["scope"] == "openid read:users"

    wider = refresh(client, client_id, secret, full.get_json()["refresh_token"], scope="read:users write:data")
    assert wider.status_code == 400
    assert wider.get_json()["error"] == "invalid_scope"


def test_public_client_refreshes_with_its_client_id(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(public=True, grant_types=["authorization_code", "refresh_token"])
    assert secret is None
    first = user_tokens(client, row.client_id, None, "ada@example.com")
    response = refresh(client, row.client_id, None, first["refresh_token"])
    assert response.status_code == 200, response.get_json()


def test_refresh_token_is_stored_only_as_a_digest(client, confidential, database_url):
    client_id, secret = confidential
    token = user_tokens(client, client_id, secret, "ada@example.com")["refresh_token"]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        digests = conn.execute(text("SELECT digest FROM refresh_tokens")).scalars().all()
    engine.dispose()
    assert digests == [digest(token)]


def test_disabled_account_cannot_refresh(client, app, confidential):
    from authserver.storage.db import session
    from authserver.storage.users import find_by_email

    client_id, secret = confidential
    first = user_tokens(client, client_id, secret, "ada@example.com")
    with app.app_context():
        find_by_email("ada@example.com").is_active = False
        session().commit()
    response = refresh(client, client_id, secret, first["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_client_without_refresh_grant_gets_no_refresh_token(client, make_user, make_client):
    make_user(email="ada@example.com")
    row, secret = make_client(grant_types=["authorization_code"])
    body = user_tokens(client, row.client_id, secret, "ada@example.com")
    assert "refresh_token" not in body
